/* Headers bound by bindgen, and C wrappers for DPDK's static inline functions and macros. */
#ifndef DPVS_SHIM_H
#define DPVS_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_memzone.h>
#include <rte_dev.h>

/* Ethdev burst I/O. */
uint16_t shim_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t shim_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

/* Mbufs. */
struct rte_mbuf *shim_pktmbuf_alloc(struct rte_mempool *mp);
int shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n);
void shim_pktmbuf_free(struct rte_mbuf *m);
void shim_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned n);
char *shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
struct rte_mempool *shim_mbuf_pool(const struct rte_mbuf *m);

/* Mempools. */
unsigned shim_mempool_size(const struct rte_mempool *mp);
unsigned shim_mempool_cache_len(const struct rte_mempool *mp, unsigned lcore);
/* Moves what lcore `lcore` holds in its cache of `mp` back to the pool. Returns how many. */
unsigned shim_mempool_cache_flush_lcore(struct rte_mempool *mp, unsigned lcore);
/* Returns to `mp` every object that is neither in its common pool nor in any lcore cache.
 * Precondition: nothing uses `mp` while this runs, and no PMD queue holds objects of `mp`.
 * Returns the number of objects returned, or a negative errno. */
int64_t shim_mempool_reclaim_unreferenced(struct rte_mempool *mp);

/* Rings. */
unsigned shim_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n);
unsigned shim_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n);
unsigned shim_ring_count(const struct rte_ring *r);

/* EAL. */
int shim_errno(void);
unsigned shim_lcore_id(void);
uint64_t shim_rdtsc(void);
uint64_t shim_tsc_hz(void);

#endif
