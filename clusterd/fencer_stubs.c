#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <stddef.h>
#include <stdint.h>
struct event_base;
struct fence_agent_run;
typedef void (*fence_agent_cb)(int, const char *, void *);
struct fence_agent_run *fence_agent_start(struct event_base *b, const char *a,
    const char *c, const char *const *k, const char *const *v, size_t n,
    const char *h, uint32_t id, unsigned t, fence_agent_cb cb, void *arg)
{ return NULL; }
void fence_agent_cancel(struct fence_agent_run *r) { }
struct fence_agent_run *fence_pacemaker_start(struct event_base *b,
    const char *h, unsigned t, fence_agent_cb cb, void *arg) { return NULL; }
