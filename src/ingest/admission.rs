//! Who gets a socket before anyone is authenticated: the file-descriptor
//! budget shared by the police and metrics listeners (kim's soft
//! `RLIMIT_NOFILE`, raised to the hard limit at start, minus a reserve kept
//! for the store, the journal, the delivery worker and the checkpoint file),
//! the table of unauthenticated connections (silent ones, and TLS handshakes
//! in progress under a global budget and a cap per source address), and
//! rate-limited summaries so that a flood is counted, not logged line by line.
//!
//! Why two tiers, and why evict rather than refuse: a police client sends its
//! ClientHello in its first round trip, so a socket that has said nothing
//! holds nothing of value, and it costs kim only a descriptor (no TLS state,
//! no CPU). Holding silent sockets until the handshake timeout, instead of
//! closing them at a small cap, keeps a flood of them from turning into a
//! reconnect storm that fills the kernel's accept queue (where a police SYN
//! would be dropped and retried a second later). Their bound is the
//! descriptor budget: when it is spent, the oldest silent socket is closed
//! for the newcomer, so a real police client always gets its chance, even
//! from the flood's own address (a per-source cap alone would shut it out
//! with the attacker). Handshakes that have started cost CPU and memory:
//! they have the `max_handshakes` budget and the per-source cap, and beyond
//! either the oldest of that scope is closed; an attacker trickling bytes
//! keeps a slot only until newer handshakes push it out or the timeout ends.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// How often a flood of one kind of refusal may reach the log.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (systemd's
/// `LimitNOFILE=` usually sets both, and then nothing is called) and returns
/// the soft limit now in force.
pub fn raise_nofile_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let wanted = match (lim.current, lim.maximum) {
        (Some(soft), Some(hard)) if soft < hard => Some(hard),
        (Some(_), None) => Some(1 << 20),
        _ => None,
    };
    if let Some(target) = wanted {
        let raised = Rlimit {
            current: Some(target),
            maximum: lim.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(1 << 20)
}

/// The descriptors the listeners may use for connections: `limit - reserve`.
#[derive(Debug)]
pub struct Descriptors {
    limit: usize,
    reserve: usize,
    open: AtomicUsize,
}

/// One accepted socket counted against [`Descriptors`]; released on drop.
#[derive(Debug)]
pub struct FdSlot(Arc<Descriptors>);

impl Drop for FdSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Descriptors {
    /// A budget for a process allowed `limit` descriptors, keeping a quarter
    /// of them (at least 16, at most 256) for everything but connections.
    pub fn new(limit: u64) -> Arc<Self> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let reserve = (limit / 4).clamp(16, 256);
        Arc::new(Self {
            limit,
            reserve,
            open: AtomicUsize::new(0),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn reserve(&self) -> usize {
        self.reserve
    }

    /// Connections counted now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Counts one more socket and says where that leaves the budget.
    pub fn take(self: &Arc<Self>) -> (FdSlot, Budget) {
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        let budget = if now + self.reserve <= self.limit {
            Budget::Within
        } else if now + self.reserve / 2 <= self.limit {
            Budget::Short
        } else {
            Budget::Spent
        };
        (FdSlot(self.clone()), budget)
    }

    /// Counts one more socket if it stays within the budget.
    pub fn try_take(self: &Arc<Self>) -> Option<FdSlot> {
        match self.take() {
            (slot, Budget::Within) => Some(slot),
            _ => None,
        }
    }
}

/// Where one more socket leaves the descriptor budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Outside the reserve.
    Within,
    /// In the first half of the reserve: allowed only if an older
    /// unauthenticated connection is closed for it (closing takes a moment,
    /// so this half absorbs the evictions still under way).
    Short,
    /// In the second half: refused outright; these are the store's.
    Spent,
}

/// What the per-source cap counts by: an IPv4 address, or an IPv6 /64 (one
/// host usually has a whole /64).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Debug)]
struct Entry {
    source: IpAddr,
    spoke: bool,
    /// Dropped (closing the receiver's wait) when the entry is evicted.
    _evict: oneshot::Sender<()>,
}

/// Ids in arrival order: ids only grow, so the first is the oldest.
type Order = BTreeSet<u64>;

#[derive(Debug, Default)]
struct Table {
    next: u64,
    entries: HashMap<u64, Entry>,
    silent: Order,
    speaking: Order,
    speaking_by_source: HashMap<IpAddr, Order>,
}

impl Table {
    fn remove(&mut self, id: u64) -> bool {
        let Some(e) = self.entries.remove(&id) else {
            return false;
        };
        if e.spoke {
            self.speaking.remove(&id);
            if let Some(ids) = self.speaking_by_source.get_mut(&e.source) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.speaking_by_source.remove(&e.source);
                }
            }
        } else {
            self.silent.remove(&id);
        }
        true
    }

    /// Evicts the oldest connection of `which`, if there is one.
    fn evict_first(&mut self, which: Which) -> bool {
        let first = match which {
            Which::Silent => self.silent.first(),
            Which::Speaking => self.speaking.first(),
            Which::SpeakingFrom(s) => self.speaking_by_source.get(&s).and_then(|o| o.first()),
        };
        match first.copied() {
            Some(id) => self.remove(id),
            None => false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Silent,
    Speaking,
    SpeakingFrom(IpAddr),
}

/// The unauthenticated connections, in two tiers. *Silent* ones (accepted,
/// nothing received yet) cost a descriptor and no TLS state; they are bounded
/// by the descriptor budget and the handshake timeout, and are the first to
/// be closed when descriptors run short. *Speaking* ones (TLS handshake under
/// way) are at most `max`, at most `per_source` from one source; beyond
/// either, the oldest of that scope is closed so the newcomer gets its turn.
#[derive(Debug)]
pub struct Handshakes {
    max: usize,
    per_source: usize,
    table: Mutex<Table>,
}

/// A place in [`Handshakes`]; leaves the table on drop.
#[derive(Debug)]
pub struct Pending {
    handshakes: Arc<Handshakes>,
    id: u64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.handshakes.lock().remove(self.id);
    }
}

impl Pending {
    /// The client has sent its first bytes: it moves from the silent tier to
    /// the handshake budget, closing the oldest handshake of its source (at
    /// the per-source cap) or overall (at `max`) to make room. Returns how
    /// many were closed; `None` when this one was itself evicted meanwhile.
    pub fn spoke(&self) -> Option<usize> {
        let h = &self.handshakes;
        let mut t = h.lock();
        let source = t.entries.get(&self.id)?.source;
        t.silent.remove(&self.id);
        let mut evicted = 0;
        if t.speaking_by_source.get(&source).map_or(0, |o| o.len()) >= h.per_source
            && t.evict_first(Which::SpeakingFrom(source))
        {
            evicted += 1;
        }
        while t.speaking.len() >= h.max && t.evict_first(Which::Speaking) {
            evicted += 1;
        }
        if let Some(e) = t.entries.get_mut(&self.id) {
            e.spoke = true;
        }
        t.speaking.insert(self.id);
        t.speaking_by_source
            .entry(source)
            .or_default()
            .insert(self.id);
        Some(evicted)
    }
}

/// The outcome of [`Handshakes::admit`].
#[derive(Debug)]
pub struct Admission {
    /// `None`: refused (over the descriptor budget with nothing to evict).
    pub pending: Option<(Pending, oneshot::Receiver<()>)>,
    /// Connections closed to make room.
    pub evicted: usize,
}

impl Handshakes {
    pub fn new(max: usize, per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            per_source: per_source.max(1),
            table: Mutex::new(Table::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Unauthenticated connections now: (silent, speaking).
    pub fn counts(&self) -> (usize, usize) {
        let t = self.lock();
        (t.silent.len(), t.speaking.len())
    }

    /// Admits a new connection from `peer` as silent. When `over_budget`
    /// (the descriptor budget is spent) the oldest silent connection is
    /// closed for it, or else the oldest handshake; with neither, it is
    /// refused. The receiver resolves when this one is evicted in turn.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, over_budget: bool) -> Admission {
        let source = source_key(peer);
        let mut t = self.lock();
        let mut evicted = 0;
        if over_budget {
            if t.evict_first(Which::Silent) || t.evict_first(Which::Speaking) {
                evicted += 1;
            } else {
                return Admission {
                    pending: None,
                    evicted,
                };
            }
        }
        let id = t.next;
        t.next += 1;
        let (tx, rx) = oneshot::channel();
        t.entries.insert(
            id,
            Entry {
                source,
                spoke: false,
                _evict: tx,
            },
        );
        t.silent.insert(id);
        drop(t);
        Admission {
            pending: Some((
                Pending {
                    handshakes: self.clone(),
                    id,
                },
                rx,
            )),
            evicted,
        }
    }
}

/// Counts events of one kind and says when a log line is due: the first at
/// once, then at most one summary per [`SUMMARY_EVERY`] with the count.
#[derive(Debug, Default)]
pub struct Summary {
    state: Mutex<(Option<Instant>, u64)>,
}

impl Summary {
    /// One more event; `Some(n)` when a line covering `n` events is due now.
    pub fn note(&self) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.1 += 1;
        let due = s.0.is_none_or(|at| at.elapsed() >= SUMMARY_EVERY);
        due.then(|| {
            let n = s.1;
            *s = (Some(Instant::now()), 0);
            n
        })
    }

    /// Events not yet logged, when a summary is due (called periodically).
    pub fn flush(&self) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let due = s.1 > 0 && s.0.is_none_or(|at| at.elapsed() >= SUMMARY_EVERY);
        due.then(|| {
            let n = s.1;
            *s = (Some(Instant::now()), 0);
            n
        })
    }
}

/// Backoff for a failing `accept` (EMFILE, ENFILE, ENOBUFS): 10 ms doubling
/// to 1 s, reset by the next success, so the loop neither spins nor stalls.
#[derive(Debug, Default)]
pub struct AcceptBackoff(u32);

impl AcceptBackoff {
    pub fn failed(&mut self) -> Duration {
        let d = Duration::from_millis(10u64 << self.0.min(7)).min(Duration::from_secs(1));
        self.0 = self.0.saturating_add(1);
        d
    }

    pub fn succeeded(&mut self) {
        self.0 = 0;
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
