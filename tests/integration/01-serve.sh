#!/bin/bash
# 01-serve.sh: `wmesh serve` serves exact bytes, and nothing hidden or outside its tree.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

tree=$T/tree
make_files "$tree" 30 >"$T/list"
mkdir -p "$tree/a/b" "$tree/.hidden-dir" "$tree/a/.private" "$tree/.wmesh-tmp"
printf 'a file with a space\n' >"$tree/a/b/with space.txt"
printf 'secret\n' >"$T/secret"
for f in .hidden a/.dotfile .hidden-dir/f.txt a/.private/f.txt .wmesh-tmp/partial; do
    printf 'secret\n' >"$tree/$f"
done
ln -s "$T/secret" "$tree/a/link-out"
ln -s "../$(head -n 1 "$T/list")" "$tree/a/link-in"

start_serve S "$tree"
base=$(base_url S)
root="http://127.0.0.1:$(http_port S)"

# status URL: prints the HTTP status; the body goes to $T/body.
status() {
    curl -s --path-as-is -o "$T/body" -w '%{http_code}' --max-time 10 "$1"
}

while IFS= read -r rel; do
    code=$(status "$base/$rel")
    [ "$code" = 200 ] || fail "GET $rel: HTTP $code"
    cmp -s "$T/body" "$tree/$rel" || fail "GET $rel: bytes differ"
done <"$T/list"
note "$(wc -l <"$T/list") files served with exact bytes"

code=$(status "$base/a/b/with%20space.txt")
if [ "$code" != 200 ] || ! cmp -s "$T/body" "$tree/a/b/with space.txt"; then
    fail "percent-encoded name: HTTP $code or bytes differ"
fi

# A HEAD gives the length without a body.
len=$(curl -sI "$base/$(sed -n 5p "$T/list")" | tr -d '\r' | awk 'tolower($1) == "content-length:" { print $2 }')
[ "$len" = "$(stat -c %s "$tree/$(sed -n 5p "$T/list")")" ] || fail "HEAD: Content-Length $len"

for url in \
    "$base/../secret" "$base/a/../../secret" "$base/%2e%2e/secret" "$base/%2E%2E/secret" \
    "$base/a/%2e%2e/%2e%2e/secret" "$base/..%2fsecret" "$base/a%2f..%2f..%2fsecret" \
    "$base/.hidden" "$base/a/.dotfile" "$base/.hidden-dir/f.txt" "$base/a/.private/f.txt" \
    "$base/.wmesh-tmp/partial" "$base/a/link-out" "$base/a/link-in" "$base/a" "$base/a/" \
    "$base/" "$base/no/such/file" "$root/secret" "$root/../secret"; do
    code=$(status "$url")
    [ "$code" = 404 ] || fail "GET ${url#"$root"}: HTTP $code, expected 404"
    ! grep -q secret "$T/body" || fail "GET ${url#"$root"}: served the secret"
done
note "../, encoded ../, dot-files, symlinks and directories refused with 404"

# Files written after start are served too.
printf 'late\n' >"$tree/late.txt"
code=$(status "$base/late.txt")
if [ "$code" != 200 ] || ! cmp -s "$T/body" "$tree/late.txt"; then
    fail "a file written after start: HTTP $code or bytes differ"
fi
alive S
