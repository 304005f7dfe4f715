/*
 * havend's status page (issue 18): a small read-only page at / of the
 * metrics listener (metrics.c) that shows the hosts, the VMs, the moves
 * under way and the event log, polling /api/status every second, with the
 * last failover's timeline drawn from the events (host lost, fenced, its
 * VMs placed, starting, running). Loopback clients get either without a
 * login, others after havenctl status login (metrics.c, status_token.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "common.h"
#include "metrics.h"
#include "tree.h"

#define STATUS_EVENTS	60	/* the newest events the page gets */

void
status_json(struct evbuffer *b, const struct metrics_view *v)
{
	const Haven__ClusterState	*cs = v->cs;
	struct json_object		*o, *a, *x, *p, *mv;
	const Haven__Host		*h;
	const Haven__Vm			*vm;
	const Haven__Host		*owner;
	size_t				 i, j, from;

	o = json_object_new_object();
	json_object_object_add(o, "node", json_object_new_string(v->node_name));
	json_object_object_add(o, "quorate", json_object_new_boolean(v->quorate));
	json_object_object_add(o, "members",
	    json_object_new_int64((int64_t)v->nmembers));
	json_object_object_add(o, "now_us", json_object_new_uint64(now_us()));
	json_object_object_add(o, "seq",
	    json_object_new_uint64(cs != NULL ? cs->seq : 0));
	a = json_object_new_array();
	for (i = 0; cs != NULL && i < cs->n_hosts; i++) {
		h = cs->hosts[i];
		x = json_object_new_object();
		json_object_object_add(x, "node_id",
		    json_object_new_int64(h->config->node_id));
		json_object_object_add(x, "name",
		    json_object_new_string(h->config->name));
		json_object_object_add(x, "membership", json_object_new_string(
		    tree_membership_name(h->runtime->membership)));
		json_object_object_add(x, "maintenance",
		    json_object_new_boolean(h->runtime->maintenance));
		json_object_object_add(x, "fence",
		    json_object_new_string(tree_fence_name(h->runtime->fence)));
		p = json_object_new_array();
		for (j = 0; j < h->runtime->n_storage; j++) {
			struct json_object	*ps = json_object_new_object();

			json_object_object_add(ps, "pool", json_object_new_string(
			    h->runtime->storage[j]->pool));
			json_object_object_add(ps, "reachable",
			    json_object_new_boolean(
			    h->runtime->storage[j]->reachable));
			json_object_array_add(p, ps);
		}
		json_object_object_add(x, "pools", p);
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "hosts", a);
	a = json_object_new_array();
	for (i = 0; cs != NULL && i < cs->n_vms; i++) {
		vm = cs->vms[i];
		x = json_object_new_object();
		json_object_object_add(x, "name",
		    json_object_new_string(vm->config->name));
		json_object_object_add(x, "phase", json_object_new_string(
		    tree_phase_name(vm->runtime->phase)));
		json_object_object_add(x, "owner",
		    json_object_new_int64(vm->runtime->owner));
		owner = vm->runtime->owner != 0 ?
		    tree_host(cs, vm->runtime->owner) : NULL;
		json_object_object_add(x, "owner_name", json_object_new_string(
		    owner != NULL ? owner->config->name : ""));
		json_object_object_add(x, "memory_mib",
		    json_object_new_uint64(vm->config->memory_mib));
		if (vm->runtime->move != NULL && vm->runtime->move->to != 0) {
			mv = json_object_new_object();
			json_object_object_add(mv, "to",
			    json_object_new_int64(vm->runtime->move->to));
			json_object_object_add(mv, "quick",
			    json_object_new_boolean(vm->runtime->move->quick));
			json_object_object_add(mv, "remaining_bytes",
			    json_object_new_uint64(
			    vm->runtime->move->remaining_bytes));
			json_object_object_add(mv, "total_bytes",
			    json_object_new_uint64(
			    vm->runtime->move->total_bytes));
			json_object_object_add(x, "move", mv);
		}
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "vms", a);
	a = json_object_new_array();
	from = cs != NULL && cs->n_events > STATUS_EVENTS ?
	    cs->n_events - STATUS_EVENTS : 0;
	for (i = from; cs != NULL && i < cs->n_events; i++) {
		x = json_object_new_object();
		json_object_object_add(x, "seq",
		    json_object_new_uint64(cs->events[i]->seq));
		json_object_object_add(x, "timestamp_us",
		    json_object_new_uint64(cs->events[i]->timestamp_us));
		json_object_object_add(x, "subject",
		    json_object_new_string(cs->events[i]->subject));
		json_object_object_add(x, "text",
		    json_object_new_string(cs->events[i]->text));
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "events", a);
	evbuffer_add_printf(b, "%s\n",
	    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/* The page: plain HTML and script, no outside resource. */
const char status_page[] =
"<!DOCTYPE html>\n"
"<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
"<title>Haven</title>\n"
"<style>\n"
"body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\n"
"h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}\n"
"table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}\n"
".member,.running{color:#070}.lost,.failed,.recovering{color:#b00;font-weight:bold}\n"
".bar{display:inline-block;height:.9em;background:#48c;vertical-align:middle}\n"
"#timeline td:first-child{text-align:right;font-variant-numeric:tabular-nums}\n"
"</style></head><body>\n"
"<h1>Haven <span id=\"cluster\"></span></h1>\n"
"<p id=\"summary\">loading…</p>\n"
"<h2>Hosts</h2><table id=\"hosts\"><thead><tr><th>host</th><th>node</th>"
"<th>membership</th><th>fence</th><th>maintenance</th><th>pools</th></tr>"
"</thead><tbody></tbody></table>\n"
"<h2>VMs</h2><table id=\"vms\"><thead><tr><th>VM</th><th>phase</th>"
"<th>on</th><th>memory</th><th>move</th></tr></thead><tbody></tbody></table>\n"
"<h2>Last failover</h2><div id=\"failover\">none</div>\n"
"<h2>Events</h2><table id=\"events\"><tbody></tbody></table>\n"
"<script>\n"
"'use strict';\n"
"function el(tag, attrs, text) {\n"
"  const e = document.createElement(tag);\n"
"  for (const k in attrs) e.setAttribute(k, attrs[k]);\n"
"  if (text !== undefined) e.textContent = text;\n"
"  return e;\n"
"}\n"
"function row(cells, attrs) {\n"
"  const tr = el('tr', attrs || {});\n"
"  for (const c of cells) {\n"
"    const td = el('td', c.cls ? {class: c.cls} : {});\n"
"    if (c.node) td.appendChild(c.node); else td.textContent = c.text;\n"
"    tr.appendChild(td);\n"
"  }\n"
"  return tr;\n"
"}\n"
"function fill(id, rows) {\n"
"  const tb = document.querySelector('#' + id + ' tbody');\n"
"  tb.replaceChildren(...rows);\n"
"}\n"
"function time(us) { return new Date(us / 1000).toISOString().substring(11, 23); }\n"
"// The last host lost, and what followed for it and for its VMs.\n"
"function failover(s) {\n"
"  let lost = null;\n"
"  for (const e of s.events)\n"
"    if (/^host /.test(e.subject) && /^lost/.test(e.text)) lost = e;\n"
"  if (!lost) return null;\n"
"  const vms = new Set();\n"
"  const steps = [];\n"
"  for (const e of s.events) {\n"
"    if (e.seq < lost.seq) continue;\n"
"    const m = /^recovering: host (\\d+) lost/.exec(e.text);\n"
"    if (m && 'host ' + m[1] === lost.subject) vms.add(e.subject);\n"
"    if (e.subject === lost.subject || vms.has(e.subject)) steps.push(e);\n"
"  }\n"
"  return {lost: lost, vms: vms, steps: steps};\n"
"}\n"
"function draw(s) {\n"
"  document.getElementById('cluster').textContent = '— seen from ' + s.node;\n"
"  document.getElementById('summary').textContent = (s.quorate ? 'quorate' : 'NOT QUORATE') +\n"
"    ', ' + s.members + ' members, ' + s.vms.length + ' VMs, change ' + s.seq;\n"
"  fill('hosts', s.hosts.map(h => row([{text: h.name}, {text: h.node_id},\n"
"    {text: h.membership, cls: h.membership}, {text: h.fence},\n"
"    {text: h.maintenance ? 'yes' : ''},\n"
"    {text: h.pools.map(p => p.pool + (p.reachable ? '' : ' (unreachable)')).join(', ')}],\n"
"    {'data-host': h.name, 'data-membership': h.membership})));\n"
"  fill('vms', s.vms.map(v => {\n"
"    let move = '';\n"
"    if (v.move) {\n"
"      const t = v.move.total_bytes, done = t ? 100 * (t - v.move.remaining_bytes) / t : 0;\n"
"      move = (v.move.quick ? 'quick' : 'live') + ' to node ' + v.move.to +\n"
"        (t ? ' ' + done.toFixed(0) + '%' : '');\n"
"    }\n"
"    return row([{text: v.name}, {text: v.phase, cls: v.phase}, {text: v.owner_name},\n"
"      {text: v.memory_mib + ' MiB'}, {text: move}],\n"
"      {'data-vm': v.name, 'data-phase': v.phase, 'data-owner': v.owner_name});\n"
"  }));\n"
"  const f = failover(s), box = document.getElementById('failover');\n"
"  if (f) {\n"
"    const t0 = f.lost.timestamp_us;\n"
"    const last = f.steps.length ? f.steps[f.steps.length - 1].timestamp_us - t0 : 1;\n"
"    const done = [...f.vms].filter(v => f.steps.some(e => e.subject === v && /^running/.test(e.text)));\n"
"    const tab = el('table', {id: 'timeline', 'data-lost': f.lost.subject,\n"
"      'data-recovered': done.join(','), 'data-vms': [...f.vms].join(',')});\n"
"    for (const e of f.steps) {\n"
"      const ms = (e.timestamp_us - t0) / 1000;\n"
"      const bar = el('span', {class: 'bar', style: 'width:' + Math.max(2, 300 * (e.timestamp_us - t0) / Math.max(last, 1)) + 'px'});\n"
"      tab.appendChild(row([{text: '+' + ms.toFixed(0) + ' ms'}, {node: bar},\n"
"        {text: e.subject}, {text: e.text}]));\n"
"    }\n"
"    box.replaceChildren(el('p', {}, f.lost.subject + ' lost at ' + time(t0) +\n"
"      (done.length ? '; running again: ' + done.join(', ') : '; recovering')), tab);\n"
"  }\n"
"  fill('events', s.events.slice().reverse().map(e => row([{text: time(e.timestamp_us)},\n"
"    {text: e.subject}, {text: e.text}])));\n"
"  document.body.setAttribute('data-seq', s.seq);\n"
"}\n"
"async function poll() {\n"
"  try {\n"
"    const r = await fetch('/api/status', {cache: 'no-store'});\n"
"    if (r.ok) draw(await r.json());\n"
"    else if (r.status === 401) { location.reload(); return; }  // the session ended: how to log in\n"
"    else document.getElementById('summary').textContent = 'havend says ' + r.status;\n"
"  } catch (e) {\n"
"    document.getElementById('summary').textContent = 'havend does not answer';\n"
"  }\n"
"  setTimeout(poll, 1000);\n"
"}\n"
"poll();\n"
"</script></body></html>\n";
