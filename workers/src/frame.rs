//! What the pipeline processes: a frame's bytes, which may grow in place (TOA insertion).
//! Implemented by the DPDK packet of a burst and, for fixtures, by `Vec<u8>`.

/// A frame being processed.
pub trait Frame {
    /// Its bytes.
    fn bytes(&mut self) -> &mut [u8];
    /// Opens `n` bytes at offset `at`, moving what follows towards the end. Returns false,
    /// changing nothing, when the buffer has no room (or `at` is past the end).
    fn insert(&mut self, at: usize, n: usize) -> bool;
    /// Cuts the frame to `len` bytes (no-op when it is not longer).
    fn truncate(&mut self, len: usize);
    /// Opens `n` bytes in front of the frame (their contents unspecified). Returns false,
    /// changing nothing, when the buffer has no room in front.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes the first `n` bytes. Returns false, changing nothing, when it is shorter.
    fn cut_front(&mut self, n: usize) -> bool;

    /// Makes the frame `len` bytes long, growing it at the end or cutting it (an answer
    /// written over its question). Returns false, changing nothing, when it cannot grow.
    fn resize(&mut self, len: usize) -> bool {
        let have = self.bytes().len();
        if have < len {
            return self.insert(have, len - have);
        }
        self.truncate(len);
        true
    }
}

impl Frame for Vec<u8> {
    fn bytes(&mut self) -> &mut [u8] {
        self
    }

    fn insert(&mut self, at: usize, n: usize) -> bool {
        if at > self.len() {
            return false;
        }
        let old = self.len();
        self.resize(old + n, 0);
        self.copy_within(at..old, at + n);
        true
    }

    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }

    fn prepend(&mut self, n: usize) -> bool {
        self.splice(0..0, std::iter::repeat_n(0, n));
        true
    }

    fn cut_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.drain(..n);
        true
    }
}

impl Frame for dpdk::Packet<'_> {
    #[inline]
    fn bytes(&mut self) -> &mut [u8] {
        self.data_mut()
    }

    fn insert(&mut self, at: usize, n: usize) -> bool {
        dpdk::Packet::insert(self, at, n)
    }

    fn truncate(&mut self, len: usize) {
        dpdk::Packet::truncate(self, len);
    }

    fn prepend(&mut self, n: usize) -> bool {
        dpdk::Packet::prepend(self, n)
    }

    fn cut_front(&mut self, n: usize) -> bool {
        dpdk::Packet::cut_front(self, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_insert_moves_the_tail() {
        let mut v = vec![1u8, 2, 3, 4];
        assert!(Frame::insert(&mut v, 1, 2));
        assert_eq!(v, [1, 2, 3, 2, 3, 4]);
        assert!(!Frame::insert(&mut v, 7, 1));
        assert_eq!(v.len(), 6);
    }

    #[test]
    fn vec_front_grows_and_shrinks() {
        let mut v = vec![1u8, 2, 3];
        assert!(Frame::prepend(&mut v, 2));
        assert_eq!(v, [0, 0, 1, 2, 3]);
        assert!(Frame::cut_front(&mut v, 3));
        assert_eq!(v, [2, 3]);
        assert!(!Frame::cut_front(&mut v, 3));
        assert_eq!(v, [2, 3]);
    }
}
