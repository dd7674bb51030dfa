use std::ptr::NonNull;

use dpdk_sys::rte_mbuf;

use crate::{Error, Mempool};

/// Packets moved per rx/tx call.
pub const BURST_SIZE: usize = 32;

/// One packet buffer, owned: it returns to its pool when dropped.
#[derive(Debug)]
pub struct Mbuf {
    ptr: NonNull<rte_mbuf>,
}

// SAFETY: an mbuf is owned by one holder at a time and can be freed from any thread (mempool
// put is thread-safe); nothing in it is thread-bound.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Allocates an empty packet from `pool`.
    ///
    /// # Errors
    /// `ENOBUFS` when the pool is empty.
    pub fn alloc(pool: &Mempool) -> Result<Mbuf, Error> {
        // SAFETY: pool.as_ptr() is a valid mempool for the lifetime of `pool`.
        let p = unsafe { dpdk_sys::shim_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(p).map(|ptr| Mbuf { ptr }).ok_or_else(|| Error::call("rte_pktmbuf_alloc", 105))
    }

    /// Builds a packet holding `data`.
    ///
    /// # Errors
    /// `ENOBUFS` when the pool is empty, `ENOSPC` when `data` does not fit one segment.
    pub fn from_bytes(pool: &Mempool, data: &[u8]) -> Result<Mbuf, Error> {
        let mut m = Mbuf::alloc(pool)?;
        let len = u16::try_from(data.len()).map_err(|_| Error::call("rte_pktmbuf_append", 28))?;
        // SAFETY: m is a valid, exclusively owned mbuf.
        let p = unsafe { dpdk_sys::shim_pktmbuf_append(m.ptr.as_ptr(), len) };
        if p.is_null() {
            return Err(Error::call("rte_pktmbuf_append", 28));
        }
        m.data_mut().copy_from_slice(data);
        Ok(m)
    }

    /// The first segment's data.
    pub fn data(&self) -> &[u8] {
        // SAFETY: the mbuf is valid and owned; buf_addr + data_off .. + data_len lies inside
        // its buffer (DPDK invariant).
        unsafe { seg_data(self.ptr.as_ptr()) }
    }

    /// The first segment's data, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `data`, and `&mut self` makes the access exclusive.
        unsafe { seg_data_mut(self.ptr.as_ptr()) }
    }

    /// Total packet length over all segments.
    pub fn pkt_len(&self) -> u32 {
        // SAFETY: valid, owned mbuf.
        unsafe { (*self.ptr.as_ptr()).pkt_len }
    }

    /// Gives up ownership without freeing.
    pub fn into_raw(self) -> *mut rte_mbuf {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and never use it again.
        unsafe { dpdk_sys::shim_pktmbuf_free(self.ptr.as_ptr()) }
    }
}

/// # Safety
/// `m` must be a valid mbuf that the caller may read for the returned lifetime.
unsafe fn seg_data<'a>(m: *const rte_mbuf) -> &'a [u8] {
    // SAFETY: guaranteed by the caller; data_off + data_len <= buf_len for a valid mbuf.
    unsafe {
        let m = &*m;
        std::slice::from_raw_parts(m.buf_addr.cast::<u8>().add(usize::from(m.data_off)), usize::from(m.data_len))
    }
}

/// # Safety
/// `m` must be a valid mbuf that the caller owns exclusively for the returned lifetime.
unsafe fn seg_data_mut<'a>(m: *mut rte_mbuf) -> &'a mut [u8] {
    // SAFETY: guaranteed by the caller; data_off + data_len <= buf_len for a valid mbuf.
    unsafe {
        let m = &*m;
        std::slice::from_raw_parts_mut(m.buf_addr.cast::<u8>().add(usize::from(m.data_off)), usize::from(m.data_len))
    }
}

/// A packet of a burst being processed in place ([`Burst::distribute_packets`]): its data,
/// which may grow.
#[derive(Debug)]
pub struct Packet<'a> {
    m: NonNull<rte_mbuf>,
    _burst: std::marker::PhantomData<&'a mut Burst>,
}

impl Packet<'_> {
    /// The data (first segment).
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mbuf is valid and owned by the burst that lent it to us exclusively.
        unsafe { seg_data_mut(self.m.as_ptr()) }
    }

    /// Opens `n` bytes at offset `at` of a single-segment packet, moving the bytes from `at` on
    /// towards the end (into the buffer's tailroom). The new bytes hold what was there before
    /// (the caller writes them). Returns false, changing nothing, when `at` is past the data,
    /// the packet has several segments, or the tailroom is shorter than `n`.
    pub fn insert(&mut self, at: usize, n: usize) -> bool {
        let m = self.m.as_ptr();
        // SAFETY: valid mbuf, exclusively ours (see data_mut).
        let (data_len, pkt_len) = unsafe { ((*m).data_len, (*m).pkt_len) };
        let Ok(n16) = u16::try_from(n) else { return false };
        if at > usize::from(data_len) || u32::from(data_len) != pkt_len {
            return false;
        }
        // SAFETY: valid single-segment mbuf; append only moves the data end within the buffer
        // (it returns null, changing nothing, when the tailroom is short).
        if unsafe { dpdk_sys::shim_pktmbuf_append(m, n16) }.is_null() {
            return false;
        }
        let data = self.data_mut();
        data.copy_within(at..usize::from(data_len), at + n);
        true
    }
}

impl Packet<'_> {
    /// Cuts a single-segment packet's data to `len` bytes. Returns false, changing nothing,
    /// when it is shorter already or has several segments.
    pub fn truncate(&mut self, len: usize) -> bool {
        let m = self.m.as_ptr();
        // SAFETY: valid mbuf, exclusively ours (see data_mut).
        let (data_len, pkt_len) = unsafe { ((*m).data_len, (*m).pkt_len) };
        if len > usize::from(data_len) || u32::from(data_len) != pkt_len {
            return false;
        }
        let cut = data_len - len as u16;
        // SAFETY: valid single-segment mbuf with at least `cut` bytes of data.
        unsafe { dpdk_sys::shim_pktmbuf_trim(m, cut) == 0 }
    }

    /// Opens `n` bytes in front of a packet's data (into the buffer's headroom): the data
    /// starts `n` bytes earlier, the new bytes holding what was there. Returns false, changing
    /// nothing, when the headroom is shorter than `n`.
    pub fn prepend(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else { return false };
        // SAFETY: valid mbuf, exclusively ours (see data_mut); prepend only moves the data
        // start within the buffer (it returns null, changing nothing, when the headroom is
        // short).
        !unsafe { dpdk_sys::shim_pktmbuf_prepend(self.m.as_ptr(), n16) }.is_null()
    }

    /// Removes the first `n` bytes of a packet's data (into the headroom). Returns false,
    /// changing nothing, when the first segment is shorter than `n`.
    pub fn cut_front(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else { return false };
        // SAFETY: valid mbuf, exclusively ours; adj checks the first segment's length
        // (null, nothing changed, when it is shorter than `n`).
        !unsafe { dpdk_sys::shim_pktmbuf_adj(self.m.as_ptr(), n16) }.is_null()
    }
}

/// A batch of up to [`BURST_SIZE`] owned packets, moved in one rx or tx call. Packets still
/// held when it is dropped are freed.
#[derive(Debug)]
pub struct Burst {
    pkts: [*mut rte_mbuf; BURST_SIZE],
    len: usize,
}

// SAFETY: a Burst owns its mbufs exclusively, like `Mbuf`.
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    /// An empty burst.
    pub const fn new() -> Burst {
        Burst { pkts: [std::ptr::null_mut(); BURST_SIZE], len: 0 }
    }

    /// Number of packets held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no packet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left.
    pub fn room(&self) -> usize {
        BURST_SIZE - self.len
    }

    /// Data of packet `i` (first segment).
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn data(&self, i: usize) -> &[u8] {
        assert!(i < self.len);
        // SAFETY: pkts[..len] are valid mbufs owned by this burst.
        unsafe { seg_data(self.pkts[i]) }
    }

    /// Writable data of packet `i` (first segment).
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn data_mut(&mut self, i: usize) -> &mut [u8] {
        assert!(i < self.len);
        // SAFETY: pkts[..len] are valid mbufs owned by this burst; &mut self is exclusive.
        unsafe { seg_data_mut(self.pkts[i]) }
    }

    /// The DPDK port id packet `i` was received on.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn port(&self, i: usize) -> u16 {
        assert!(i < self.len);
        // SAFETY: pkts[..len] are valid mbufs owned by this burst.
        unsafe { dpdk_sys::shim_mbuf_port(self.pkts[i]) }
    }

    /// Adds a packet. Returns it back when the burst is full.
    ///
    /// # Errors
    /// The packet itself, when there is no room.
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == BURST_SIZE {
            return Err(m);
        }
        self.pkts[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Takes the last packet out.
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        NonNull::new(self.pkts[self.len]).map(|ptr| Mbuf { ptr })
    }

    /// Keeps the packets for which `keep` returns true, in order, and frees the others.
    /// Returns how many were freed.
    pub fn retain(&mut self, mut keep: impl FnMut(&mut [u8]) -> bool) -> usize {
        let len = self.len;
        // Should `keep` panic, the burst forgets the rest (leaks) rather than free twice.
        self.len = 0;
        let mut kept = 0;
        for i in 0..len {
            let m = self.pkts[i];
            // SAFETY: pkts[i] (i < len) is a valid mbuf owned by this burst.
            if keep(unsafe { seg_data_mut(m) }) {
                self.pkts[kept] = m;
                kept += 1;
            } else {
                // SAFETY: we own m and drop it from the burst.
                unsafe { dpdk_sys::shim_pktmbuf_free(m) };
            }
        }
        self.len = kept;
        len - kept
    }

    /// Empties the burst into `outs`: each packet, lent as a [`Packet`] whose data may grow,
    /// goes to `outs[i]` for the `Some(i)` that `dest` returns when given the packet's input
    /// port id, or is freed for `None`; `dest` sees the packets in order. Returns how many
    /// were freed.
    ///
    /// # Panics
    /// If `dest` names an index out of `outs`, or a burst of `outs` without room (empty
    /// bursts always have room).
    pub fn distribute_packets(
        &mut self,
        outs: &mut [Burst],
        mut dest: impl FnMut(u16, &mut Packet<'_>) -> Option<usize>,
    ) -> usize {
        let len = self.len;
        // Should `dest` panic, the burst forgets the rest (leaks) rather than free twice.
        self.len = 0;
        let mut freed = 0;
        for i in 0..len {
            let m = self.pkts[i];
            // SAFETY: pkts[i] (i < len) is a valid mbuf owned by this burst.
            let port = unsafe { dpdk_sys::shim_mbuf_port(m) };
            let Some(nn) = NonNull::new(m) else { continue };
            let mut p = Packet { m: nn, _burst: std::marker::PhantomData };
            match dest(port, &mut p) {
                Some(o) => {
                    let out = &mut outs[o];
                    assert!(out.len < BURST_SIZE, "distribute: no room in the output burst");
                    out.pkts[out.len] = m;
                    out.len += 1;
                }
                None => {
                    // SAFETY: we own m and drop it from the burst.
                    unsafe { dpdk_sys::shim_pktmbuf_free(m) };
                    freed += 1;
                }
            }
        }
        freed
    }

    /// Frees every packet held.
    pub fn clear(&mut self) {
        if self.len > 0 {
            let n = u32::try_from(self.len).unwrap_or(0);
            // SAFETY: pkts[..len] are valid mbufs owned by this burst; they are forgotten.
            unsafe { dpdk_sys::shim_pktmbuf_free_bulk(self.pkts.as_mut_ptr(), n) };
            self.len = 0;
        }
    }

    /// Space for an rx call to fill: the pointer to the first free entry and its length.
    pub(crate) fn spare(&mut self) -> (*mut *mut rte_mbuf, u16) {
        // BURST_SIZE fits u16.
        (self.pkts[self.len..].as_mut_ptr(), (BURST_SIZE - self.len) as u16)
    }

    /// Records that an rx call filled `n` more entries.
    ///
    /// # Safety
    /// The `n` entries after the current length must now hold valid mbufs owned by us.
    pub(crate) unsafe fn filled(&mut self, n: usize) {
        debug_assert!(self.len + n <= BURST_SIZE);
        self.len += n;
    }

    /// The held packets for a tx call.
    pub(crate) fn held(&mut self) -> (*mut *mut rte_mbuf, u16) {
        (self.pkts.as_mut_ptr(), self.len as u16)
    }

    /// Records that the first `n` packets were handed away (to a PMD or ring): the rest move
    /// to the front.
    pub(crate) fn consumed(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        self.pkts.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}
