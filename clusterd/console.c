/*
 * havenctl's interactive consoles of a VM this host runs (issue 16): havend
 * checks who asks and where the VM runs, then makes a socket pair, sends
 * one end to the VM's worker (which joins it to QEMU's serial port, or
 * hands it to QEMU's VNC server) and the other to havenctl beside its
 * reply. The bytes then flow between havenctl and the worker; havend is no
 * longer in their way.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clusterd.h"
#include "common.h"
#include "havend.h"
#include "proto.h"

/* FRAME_VM_CONSOLE_ATTACH, for the VM's operators (route: REQUEST_VM). */
void
havend_vm_console_attach(struct control_client *c, ProtobufCMessage *m,
    void *arg)
{
	struct havend		*h = arg;
	Haven__ConsoleAttach	*req = (Haven__ConsoleAttach *)m;
	Haven__ConsoleAttach	 fwd = HAVEN__CONSOLE_ATTACH__INIT;
	Haven__ConsoleAttached	 r = HAVEN__CONSOLE_ATTACHED__INIT;
	const struct cluster	*st = replica_state(h->replica);
	const Haven__Vm		*vm = cluster_vm(st, req->name);
	const Haven__Host	*owner;
	const struct identity	*who = control_client_identity(c);
	const char		*what;
	char			 whom[128];
	int			 sv[2];

	what = req->kind == HAVEN__CONSOLE_KIND__CONSOLE_KIND_VNC ?
	    "vnc" : "console";
	if (vm == NULL) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_NOT_FOUND,
		    "no VM named '%s'; 'havenctl vm list' shows them", req->name);
		return;
	}
	if (vm->runtime->owner != h->node_id) {
		/* The bytes would have to cross hosts, and havends share
		 * only corosync's messages: the owner's havend serves it. */
		owner = vm->runtime->owner ? cluster_host(st,
		    vm->runtime->owner) : NULL;
		if (owner != NULL)
			control_reply_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_NOT_FOUND, "VM %s runs "
			    "on %s (node %u): run 'havenctl vm %s %s%s' on that "
			    "host", req->name, owner->config->name,
			    owner->config->node_id, what, req->name,
			    *what == 'c' ? " --attach" : "");
		else
			control_reply_error(c,
			    HAVEN__ERROR_CODE__ERROR_CODE_NOT_FOUND, "VM %s is %s "
			    "and runs nowhere: it has no console now", req->name,
			    tree_phase_name(vm->runtime->phase));
		return;
	}
	if (vm->runtime->phase != HAVEN__VM_PHASE__VM_PHASE_RUNNING &&
	    vm->runtime->phase != HAVEN__VM_PHASE__VM_PHASE_PAUSED) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_CONFLICT,
		    "VM %s is %s: its console opens once it runs", req->name,
		    tree_phase_name(vm->runtime->phase));
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "socketpair: %s", strerror(errno));
		return;
	}
	snprintf(whom, sizeof whom, "uid %lu (pid %ld)",
	    (unsigned long)who->uid, (long)who->pid);
	fwd.name = req->name;
	fwd.kind = req->kind;
	fwd.who = whom;
	if (supervisor_console(h->supervisor, vm->config->uuid, &fwd,
	    sv[1]) == -1) {
		control_reply_error(c, HAVEN__ERROR_CODE__ERROR_CODE_CONFLICT,
		    "VM %s has no worker answering on this host now; try "
		    "again in a moment", req->name);
		goto done;
	}
	log_vm(LOG_LEVEL_INFO, vm->config->name, "%s session for %s", what,
	    whom);
	r.owner = h->node_id;
	control_reply_fds(c, FRAME_VM_CONSOLE_ATTACHED, &r.base, &sv[0], 1);
done:
	close(sv[0]);
	close(sv[1]);
}

const char *
havend_target_console_attach(ProtobufCMessage *m)
{
	return ((Haven__ConsoleAttach *)m)->name;
}
