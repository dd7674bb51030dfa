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
int shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
struct rte_mempool *shim_mbuf_pool(const struct rte_mbuf *m);

/* Mempools. */
unsigned shim_mempool_size(const struct rte_mempool *mp);
unsigned shim_mempool_cache_len(const struct rte_mempool *mp, unsigned lcore);
/* Free objects: common pool plus every lcore cache, not capped at the pool size (so a
 * duplicated object shows as a count above it). Ring-based pools only; others get
 * rte_mempool_avail_count. */
unsigned shim_mempool_free_count(const struct rte_mempool *mp);

/* What shim_mempool_recover_dead_lcore did. */
struct shim_recovery {
	unsigned restored;     /* objects from the dead lcore's cache put back in the pool */
	unsigned lost;         /* objects in no list, held by the dead process, returned */
	unsigned duplicates;   /* stale cache entries dropped (already free elsewhere) */
	unsigned ring_repairs; /* ring head/tail reservations of the dead process dropped */
};

/* After the death of the only process using lcore `lcore` of ring-based pool `mp`: repairs the
 * pool's ring if the process died inside a ring operation, returns its lcore cache to the
 * pool without duplicates, and if `find_lost`, returns every object that is in neither the
 * pool nor any cache. Precondition: nothing uses `mp` while this runs, and (for find_lost) no
 * device queue holds objects of `mp`. With find_lost < 0, the pool is shared with live lcores
 * that free into it: the ring is only repaired after it stayed inconsistent for ~10 ms, and
 * the dead cache's entries are enqueued without taking the ring's contents out.
 * Returns 0 or a negative errno (-ENOTSUP for pools that are not ring-based). */
int shim_mempool_recover_dead_lcore(struct rte_mempool *mp, unsigned lcore, int find_lost,
				    struct shim_recovery *out);

/* Rings. */
unsigned shim_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n);
unsigned shim_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n);
unsigned shim_ring_count(const struct rte_ring *r);
/* After the death of the only producer (prod_side != 0) or the only consumer of a
 * single-producer/single-consumer ring: drops a reservation it left half done (head != tail).
 * Returns 1 if it repaired something, 0 if not, -ENOTSUP for other sync modes. */
int shim_ring_repair(struct rte_ring *r, int prod_side);
/* The input port of a received mbuf. */
uint16_t shim_mbuf_port(const struct rte_mbuf *m);

/* EAL. */
int shim_errno(void);
unsigned shim_lcore_id(void);
uint64_t shim_rdtsc(void);
uint64_t shim_tsc_hz(void);

/* Receive-side scaling: DPDK's software Toeplitz hash (rte_softrss) of `len` 32-bit words of
 * `tuple`, in host byte order, under the 40-byte key `key` as a NIC holds it. */
uint32_t shim_softrss(const uint32_t *tuple, uint32_t len, const uint8_t *key);

#endif
