#!/bin/bash
# 35-valgrind.sh: A -> B -> C with 50 files, the relay B running under valgrind (memcheck, full
# leak check, definite leaks count as errors). B is stopped with SIGTERM at the end: it must exit
# cleanly and valgrind must report 0 errors. B runs with --inline 1024, so the copies of small
# files into its announcements are checked too, and relays a 5 MiB file, hashed on its hasher's
# thread.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_faults.sh"

if ! command -v valgrind >/dev/null; then
    skip "valgrind is not installed (sh scripts/deps.sh --extra installs it)"
fi
if wmesh_sanitized; then
    skip "$WMESH is built with a sanitizer, which valgrind cannot run"
fi

N=${N:-50}
for b in bA bB bC; do
    start_broker "$b"
done
mesh_peer A bA
# B runs under valgrind: start_peer runs "$WMESH", so point it at a wrapper for B only.
real=$WMESH
cat >"$T/vg-wmesh" <<EOF
#!/bin/sh
exec valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \\
    --track-fds=no --num-callers=30 --log-file="$T/B.valgrind" "$real" "\$@"
EOF
chmod +x "$T/vg-wmesh"
WMESH=$T/vg-wmesh
mesh_peer B bB bA -- --inline 1024
WMESH=$real
mesh_peer C bC bB
grep -q 'Memcheck' "$T/B.valgrind" || fail "B does not run under valgrind"

make_files "$(tree_of A)" "$N" >"$T/list"
post_files bA "$(base_url A)" "$(tree_of A)" "$T/list"
wait_until 150 all_present "$(tree_of C)" "$T/list" ||
    fail "C holds $(count_present "$(tree_of C)" "$T/list") of $N files"
same_files "$(tree_of A)" "$(tree_of C)" "$T/list" || fail "C: some file differs from A's"
settle B C
once_each B downloaded
[ "$(metric B wmesh_published_inline_total)" -gt 0 ] || fail "B put no file inline: $(counters B)"
note "all $N files went through B under valgrind: $(counters B)"
# A large file: B hashes it on its hasher's thread, behind the writes.
big=Radar/large/composite.bin
mkdir -p "$(tree_of A)/${big%/*}"
head -c $((5 * 1024 * 1024 + 3)) /dev/urandom >"$(tree_of A)/$big"
echo "$big" >"$T/big.list"
post_files bA "$(base_url A)" "$(tree_of A)" "$T/big.list"
wait_until 120 test -f "$(tree_of C)/$big" || fail "the large file did not reach C"
cmp -s "$(tree_of A)/$big" "$(tree_of C)/$big" || fail "C's copy of the large file differs"
# Error paths too: a malformed message, and a wrong checksum that B keeps retrying when it stops.
pub bA xpublic/v03/post/x '{"pubTime": "2024'
rel=$(head -n 1 "$T/list")
printf 'other bytes' >"$T/other"
pub bA "$(topic_of "$rel.bad")" "$(v03_msg "$(base_url A)" "$rel" sha512 "$(checksum_b64 sha512 "$T/other")")"
wait_until 30 logged_has B rejected malformed: || fail "B did not reject the malformed message"
wait_until 30 grep -q "download of $rel failed\|failed $rel" "$T/B.log" || fail "B did not try the wrong checksum"
# ... and the large one, announced with a wrong checksum, which B may be hashing when it stops.
pub bA "$(topic_of "$big.bad")" "$(v03_msg "$(base_url A)" "$big" sha512 \
    "$(checksum_b64 sha512 "$T/other")" ", \"size\": $(stat -c %s "$(tree_of A)/$big")")"
wait_until 60 grep -q "download of $big failed" "$T/B.log" || fail "B did not try the large file"

pid=$(pid_of B)
kill -TERM "$pid"
wait_until 120 gone "$pid" || fail "B under valgrind did not stop within 120 s of SIGTERM"
rc=0
wait "$pid" || rc=$?
untrack "$pid"
summary=$(grep 'ERROR SUMMARY' "$T/B.valgrind" | tail -n 1)
note "B exited with status $rc; valgrind: ${summary#*== }"
grep -E 'definitely lost|indirectly lost|possibly lost' "$T/B.valgrind" | sed 's/^==[0-9]*== */    /' >&2 || true
if [ "$rc" -ne 0 ] || ! grep -q 'ERROR SUMMARY: 0 errors' <<<"$summary"; then
    sed -n '1,400p' "$T/B.valgrind" >&2
    fail "valgrind found errors in B (exit status $rc)"
fi
