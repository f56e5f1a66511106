/* version.h: the version of wmesh, stated once in the file VERSION at the top of the tree. */
#ifndef WMESH_VERSION_H
#define WMESH_VERSION_H

/* The Makefile passes -DWMESH_VERSION='"x.y.z"' from VERSION; a build without it is refused
 * rather than given a version that nobody stated. */
#ifndef WMESH_VERSION
#error "WMESH_VERSION is not defined: build with the Makefile, which reads it from VERSION"
#endif

/* What wmesh says it is in HTTP requests (User-Agent) and WebSocket upgrades. */
#define WMESH_USER_AGENT "wmesh/" WMESH_VERSION

#endif
