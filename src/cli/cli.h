/* cli.h: the wmesh subcommands. Each parses its own arguments and returns the exit status. */
#ifndef WMESH_CLI_H
#define WMESH_CLI_H

int cmd_peer(int argc, char **argv);
int cmd_post(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_sub(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_clean(int argc, char **argv);
int cmd_outbox(int argc, char **argv);
int cmd_gb(int argc, char **argv);
int cmd_broker_config(int argc, char **argv);

#endif
