//! Which lcore does what: its role, the queues it polls and the tx queues it owns.
//!
//! Ports: index 0 is the sending port (`--tx-vdev`), index 1 the receiving one when it is
//! another (`--rx-vdev`); each has the same `Q` queue pairs. With `L` sending lcores
//! (`--lcores`) and `K` receiving ones (`--rx-lcores`), lcore ids `0..L` are the senders and
//! `L..L + K` the receivers:
//!
//! - `K == 0` ([`Role::Both`], what the generator always did): lcore `i` owns the queue pairs
//!   `q` with `q % L == i` of every port, rx and tx. It sends its flows on them, polls their rx
//!   sides and answers on their tx sides.
//! - `K > 0`: sender `i` ([`Role::Send`]) owns the tx sides of the sending port's queues
//!   `q % L == i` and polls no rx queue. Receiver `j` ([`Role::Receive`]) polls the rx sides
//!   `q % K == j` of every port and owns the tx sides `q % K == j` of the receiving port when
//!   it is another (no sender ever transmits there).
//!
//! Invariants (checked by the tests below): every rx queue of every port is polled by
//! exactly one lcore; every tx queue is owned by at most one lcore, and every tx queue of the
//! sending port by exactly one (memif queues, like most PMDs' queues, take one producer and
//! one consumer at a time; DPDK's burst calls must not run on one queue from two threads).
//!
//! An lcore that owns no tx queue of a port (a receiver, on the sending port) hands its
//! answers out of that port to the queue's owner: queue `q`'s answers go through `q`'s
//! hand-over ring (a DPDK ring, many receivers in, the owning sender out), and the sender
//! moves them onto `q`'s tx side between its bursts. So an answer always goes on the queue
//! the steering chose for it (never `answers_off_queue` on the sending port), and a receiver
//! never waits for a sender: a lock on a shared tx queue would stall it for a whole time
//! slice whenever the sender holding it is preempted (CPUs are shared here), which is the
//! rx overflow receiving lcores are there to avoid. Partitioning the queues instead (`Q >= L +
//! K`, receivers answering on queues of their own) does not work: the steering puts flows,
//! and so their answers, on every queue.

/// What an lcore does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends its flows, receives and answers on its own queues (`--rx-lcores 0`).
    Both,
    /// Only sends: its flows, and the answers receivers hand it for its queues.
    Send,
    /// Only receives, and answers.
    Receive,
}

impl Role {
    /// The name the report gives it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Both => "both",
            Role::Send => "send",
            Role::Receive => "receive",
        }
    }
}

/// One lcore's part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// What it does.
    pub role: Role,
    /// Its queues are those `q` with `q % of == index`.
    pub index: u16,
    /// Lcores of its kind: `L` for senders (and both), `K` for receivers.
    pub of: u16,
    /// The rx queues it polls: port index, queue.
    pub rx: Vec<(usize, u16)>,
    /// The tx queues it owns, by port index, in increasing order (queue `q` at `q / of`); none
    /// on a port whose answers it hands over.
    pub tx: Vec<Vec<u16>>,
}

/// The queues `q < queues` with `q % of == index`.
pub fn owned(index: u16, of: u16, queues: u16) -> Vec<u16> {
    (index..queues).step_by(usize::from(of.max(1))).collect()
}

/// The parts of `senders` sending lcores then `receivers` receiving ones (0: every lcore both
/// sends and receives), by lcore id, over `ports` ports (1 or 2) of `queues` queue pairs.
pub fn assign(senders: u16, receivers: u16, queues: u16, ports: usize) -> Vec<Part> {
    let all_ports =
        |mine: &[u16]| -> Vec<(usize, u16)> { (0..ports).flat_map(|p| mine.iter().map(move |&q| (p, q))).collect() };
    if receivers == 0 {
        return (0..senders)
            .map(|i| {
                let mine = owned(i, senders, queues);
                Part { role: Role::Both, index: i, of: senders, rx: all_ports(&mine), tx: vec![mine; ports] }
            })
            .collect();
    }
    let sending = (0..senders).map(|i| {
        let mut tx = vec![Vec::new(); ports];
        tx[0] = owned(i, senders, queues);
        Part { role: Role::Send, index: i, of: senders, rx: Vec::new(), tx }
    });
    let receiving = (0..receivers).map(|j| {
        let mine = owned(j, receivers, queues);
        let mut tx = vec![Vec::new(); ports];
        if ports > 1 {
            tx[1].clone_from(&mine);
        }
        Part { role: Role::Receive, index: j, of: receivers, rx: all_ports(&mine), tx }
    });
    sending.chain(receiving).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls of each rx queue and owners of each tx queue, by port then queue.
    fn tally(parts: &[Part], ports: usize, queues: u16) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
        let mut rx = vec![vec![0; usize::from(queues)]; ports];
        let mut tx = rx.clone();
        for p in parts {
            p.rx.iter().for_each(|&(port, q)| rx[port][usize::from(q)] += 1);
            for (port, qs) in p.tx.iter().enumerate() {
                qs.iter().for_each(|&q| tx[port][usize::from(q)] += 1);
            }
        }
        (rx, tx)
    }

    /// Every rx queue polled once, every tx queue of the sending port owned once and of the
    /// receiving port at most once, an lcore's queues being its own ones (`q % of == index`,
    /// at `q / of`), for every shape the command line allows.
    #[test]
    fn every_queue_has_one_poller_and_at_most_one_transmitter() {
        for ports in [1, 2] {
            for senders in 1..=5u16 {
                for receivers in 0..=5u16 {
                    for queues in senders.max(receivers)..=8 {
                        let parts = assign(senders, receivers, queues, ports);
                        let what = format!("{senders} senders, {receivers} receivers, {queues} queues, {ports} ports");
                        assert_eq!(parts.len(), usize::from(senders + receivers), "{what}");
                        let (rx, tx) = tally(&parts, ports, queues);
                        assert!(rx.iter().flatten().all(|&n| n == 1), "{what}: {rx:?}");
                        assert!(tx[0].iter().all(|&n| n == 1), "{what}: {tx:?}");
                        assert!(tx.iter().flatten().all(|&n| n <= 1), "{what}: {tx:?}");
                        for p in &parts {
                            assert_eq!(p.tx.len(), ports);
                            let mine = |q: u16| q % p.of == p.index;
                            assert!(p.rx.iter().all(|&(_, q)| mine(q)), "{what}: {p:?}");
                            for qs in &p.tx {
                                assert!(qs.iter().enumerate().all(|(k, &q)| mine(q) && usize::from(q / p.of) == k));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Without receiving lcores, lcore i does everything on its queues q % L == i, as before.
    #[test]
    fn without_receivers_every_lcore_does_both_on_its_queues() {
        let parts = assign(2, 0, 5, 2);
        let want0 = Part {
            role: Role::Both,
            index: 0,
            of: 2,
            rx: vec![(0, 0), (0, 2), (0, 4), (1, 0), (1, 2), (1, 4)],
            tx: vec![vec![0, 2, 4], vec![0, 2, 4]],
        };
        assert_eq!(parts[0], want0);
        assert_eq!(
            (parts[1].role, &parts[1].rx[..], &parts[1].tx[0][..]),
            (Role::Both, &[(0, 1), (0, 3), (1, 1), (1, 3)][..], &[1, 3][..])
        );
    }

    /// Senders first (lcore ids 0..L), then receivers: senders poll nothing and own only the
    /// sending port's tx sides; receivers own no tx side of the sending port (they hand those
    /// answers over), and the receiving port's tx sides of their own queues.
    #[test]
    fn senders_come_first_and_receivers_hand_over_the_sending_ports_answers() {
        let parts = assign(2, 3, 4, 2);
        let roles: Vec<_> = parts.iter().map(|p| (p.role, p.index, p.of)).collect();
        assert_eq!(
            roles,
            [
                (Role::Send, 0, 2),
                (Role::Send, 1, 2),
                (Role::Receive, 0, 3),
                (Role::Receive, 1, 3),
                (Role::Receive, 2, 3)
            ]
        );
        assert_eq!((&parts[0].rx[..], &parts[0].tx[..]), (&[][..], &[vec![0, 2], vec![]][..]));
        assert_eq!((&parts[1].rx[..], &parts[1].tx[..]), (&[][..], &[vec![1, 3], vec![]][..]));
        assert_eq!(
            (&parts[2].rx[..], &parts[2].tx[..]),
            (&[(0, 0), (0, 3), (1, 0), (1, 3)][..], &[vec![], vec![0, 3]][..])
        );
        assert_eq!((&parts[4].rx[..], &parts[4].tx[..]), (&[(0, 2), (1, 2)][..], &[vec![], vec![2]][..]));
        // One port: a receiver owns no tx queue at all, every answer is handed over.
        let one = assign(1, 1, 1, 1);
        assert_eq!(one[0], Part { role: Role::Send, index: 0, of: 1, rx: vec![], tx: vec![vec![0]] });
        assert_eq!(one[1], Part { role: Role::Receive, index: 0, of: 1, rx: vec![(0, 0)], tx: vec![vec![]] });
        assert_eq!(
            parts.iter().map(|p| p.role.name()).collect::<Vec<_>>(),
            ["send", "send", "receive", "receive", "receive"]
        );
    }
}
