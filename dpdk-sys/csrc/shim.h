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
#include <rte_bpf.h>
#include <rte_pdump.h>
#include <rte_telemetry.h>

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
char *shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
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

/* Packet capture for stock dpdk-dumpcap and dpdk-pdump when secondaries do the I/O.
 *
 * DPDK 22.11's pdump serves a capture request in the primary only: it adds rx/tx callbacks
 * there, which fire in the primary's own rx/tx bursts, never in a secondary's (callbacks live
 * in each process's private ethdev array). And rte_pdump_init() fails in a secondary once
 * the primary reserved the statistics memzone. So the primary takes the request over the
 * same IPC channel ("mp_pdump", the wire format of librte_pdump 22.11, mirrored in shim.c),
 * records it where the polling processes see it, and each of them adds the callbacks on the
 * queues it polls, copying packets the way librte_pdump does (rte_pcapng_copy or
 * rte_pktmbuf_copy into the capturing tool's pool, onto its ring, counted in the library's
 * statistics memzone, so that rte_pdump_stats() reports them). */

/* A request from the capturing tool, as shim_capture_serve hands it over. */
struct shim_capture_request {
	int enable;                      /* 1: enable, 0: disable */
	uint32_t flags;                  /* RTE_PDUMP_FLAG_RX and/or RTE_PDUMP_FLAG_TX */
	char device[RTE_DEV_NAME_MAX_LEN];
	uint16_t queue;                  /* a queue, or RTE_PDUMP_ALL_QUEUES */
	uint64_t ring;                   /* struct rte_ring * in the tool's hugepage memory */
	uint64_t mempool;                /* struct rte_mempool * likewise */
	uint64_t filter;                 /* const struct rte_bpf_prm *, or 0 */
	uint32_t snaplen;
	int pcapng;                      /* 1: pcapng-wrapped copies (dumpcap), 0: plain (pdump) */
	int requester_pid;               /* the tool's process id, 0 if unknown */
	uint16_t wire_ver, wire_op;      /* for an answer given later (shim_capture_reply) */
	char peer[128];                  /* the tool's IPC socket, likewise */
};

/* A decision meaning: answered later, with shim_capture_reply. */
#define SHIM_CAPTURE_LATER 1

/* Decides a request: 0 to accept, a negative errno to refuse, or SHIM_CAPTURE_LATER. Runs on
 * the EAL's IPC thread. */
typedef int (*shim_capture_decide)(const struct shim_capture_request *req);

/* Answers a request decided SHIM_CAPTURE_LATER (from any thread): `err` 0 or a negative errno. */
int shim_capture_reply(const struct shim_capture_request *req, int err);

/* Primary: reserves the library's statistics (rte_pdump_init) and answers "mp_pdump" requests
 * with `decide`'s verdict, after checking the version, the size and any BPF filter. */
int shim_capture_serve(shim_capture_decide decide);

/* One capturing queue of this process: its callback and where the copies go. */
struct shim_capture;

/* Adds a capture callback to rx (tx = 0) or tx queue `queue` of `port`, in this process.
 * Returns NULL with rte_errno set on failure. */
struct shim_capture *shim_capture_start(uint16_t port, uint16_t queue, int tx, uint64_t ring,
					uint64_t mempool, uint64_t filter, uint32_t snaplen,
					int pcapng);
/* Removes the callback and frees the capture. The caller ensures no burst on that queue is in
 * flight in this process (it is the thread that polls it). */
void shim_capture_stop(struct shim_capture *c);

#endif
