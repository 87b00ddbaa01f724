//! The runtime event bus behind the `Events` RPC.
//!
//! Publishers push events (a type URL plus an encoded protobuf payload, and the id of the actor
//! that caused them); the bus keeps the most recent ones (default 1000) in a ring and hands
//! them to subscribers with the tail semantics of `EventsRequest`:
//!
//! - no tail: only events published after subscribing;
//! - [`Tail::Count`]`(n)`: the last `n` retained events first (a negative `n`: all of them);
//! - [`Tail::Since`]`(id)`: retained events newer than `id` first;
//! - [`Tail::Duration`]`(d)`: retained events from the last `d` first.
//!
//! Like Talos, a subscriber never sees the oldest `gap` slots (default 10), which the next
//! publications may overwrite at any moment, and a subscriber that falls a whole ring behind
//! is ended (its stream returns `None`) rather than slowing publishers down.
//!
//! Event ids are [`EventId`]s in the 20-character `xid` form Talos uses (time-ordered), so
//! `talosctl events --since <id>` works with ids from either implementation.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

/// Default number of events retained.
pub const DEFAULT_CAPACITY: usize = 1000;
/// Default number of oldest slots hidden from new subscribers.
pub const DEFAULT_GAP: usize = 10;

/// The type URL Talos gives a runtime event payload: `talos/runtime/<proto full name>`.
pub fn runtime_type_url(message_full_name: &str) -> String {
    format!("talos/runtime/{message_full_name}")
}

/// A globally unique, time-ordered event id (12 bytes: seconds, machine, process, counter).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId([u8; 12]);

/// The xid alphabet (base32hex, lower case).
const XID_ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

impl EventId {
    /// An id from its raw bytes.
    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        EventId(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }

    /// The creation time (second resolution).
    pub fn time(&self) -> SystemTime {
        let secs = u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]);
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(secs))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 96 bits, big-endian, padded with 4 zero bits to 20 five-bit digits.
        let value = u128::from_be_bytes({
            let mut b = [0u8; 16];
            b[4..].copy_from_slice(&self.0);
            b
        }) << 4;
        let mut s = [0u8; 20];
        for (i, c) in s.iter_mut().enumerate() {
            let digit = (value >> (5 * (19 - i))) & 0x1f;
            *c = XID_ALPHABET[digit as usize];
        }
        f.write_str(&String::from_utf8_lossy(&s))
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

/// A string that is not an event id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event id {0:?}: expected 20 characters of 0-9 and a-v")]
pub struct InvalidEventId(pub String);

impl FromStr for EventId {
    type Err = InvalidEventId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidEventId(s.to_string());
        if s.len() != 20 {
            return Err(invalid());
        }
        let mut value: u128 = 0;
        for c in s.bytes() {
            let digit = XID_ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or_else(invalid)?;
            value = (value << 5) | digit as u128;
        }
        if value & 0xf != 0 {
            return Err(invalid());
        }
        let bytes = (value >> 4).to_be_bytes();
        let mut id = [0u8; 12];
        id.copy_from_slice(&bytes[4..]);
        Ok(EventId(id))
    }
}

/// Makes increasing ids for one process.
#[derive(Debug)]
struct IdGenerator {
    machine: [u8; 3],
    pid: [u8; 2],
    counter: AtomicU32,
}

impl IdGenerator {
    fn new() -> Self {
        let machine: [u8; 3] = rand::random();
        let pid = (std::process::id() as u16).to_be_bytes();
        // Start low enough that the 24-bit counter cannot wrap within a second.
        let start = rand::random::<u32>() & 0x3f_ffff;
        IdGenerator {
            machine,
            pid,
            counter: AtomicU32::new(start),
        }
    }

    fn next(&self, now: SystemTime) -> EventId {
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let secs = u32::try_from(secs).unwrap_or(u32::MAX).to_be_bytes();
        let n = self.counter.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&secs);
        b[4..7].copy_from_slice(&self.machine);
        b[7..9].copy_from_slice(&self.pid);
        b[9..].copy_from_slice(&n[1..]);
        EventId(b)
    }
}

/// One published event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique, time-ordered id.
    pub id: EventId,
    /// Payload type (`talos/runtime/machine.ServiceStateEvent`); empty for the hello event.
    pub type_url: String,
    /// The encoded protobuf payload.
    pub payload: Vec<u8>,
    /// Who caused it (an API call's actor id), or empty.
    pub actor_id: String,
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tail {
    /// Only events published after subscribing.
    #[default]
    None,
    /// The last `n` retained events; negative means all retained events.
    Count(i32),
    /// Retained events newer than this id.
    Since(EventId),
    /// Retained events created within this long before subscribing.
    Duration(Duration),
}

/// Subscription options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchOptions {
    /// Where to start.
    pub tail: Tail,
    /// Only events with this actor id.
    pub actor_id: Option<String>,
}

#[derive(Debug, Default)]
struct Ring {
    events: VecDeque<Event>,
    /// Position the next event gets (= number of events ever published).
    write_pos: u64,
}

impl Ring {
    fn first_pos(&self) -> u64 {
        self.write_pos - self.events.len() as u64
    }

    fn at(&self, pos: u64) -> Option<&Event> {
        let index = usize::try_from(pos.checked_sub(self.first_pos())?).ok()?;
        self.events.get(index)
    }
}

/// The event bus. Share it as `Arc<EventBus>`.
#[derive(Debug)]
pub struct EventBus {
    capacity: usize,
    gap: usize,
    ring: Mutex<Ring>,
    written: watch::Sender<u64>,
    ids: IdGenerator,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(DEFAULT_CAPACITY, DEFAULT_GAP)
    }
}

impl EventBus {
    /// A bus retaining `capacity` events and hiding the oldest `gap` of them from new
    /// subscribers (`gap` is clamped below `capacity`).
    pub fn new(capacity: usize, gap: usize) -> Self {
        let capacity = capacity.max(2);
        EventBus {
            capacity,
            gap: gap.min(capacity - 1),
            ring: Mutex::new(Ring::default()),
            written: watch::Sender::new(0),
            ids: IdGenerator::new(),
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh id (for events that are sent but not published, like the `Events` hello).
    pub fn new_id(&self) -> EventId {
        self.ids.next(SystemTime::now())
    }

    /// Publishes an event and returns its id.
    pub fn publish(&self, type_url: &str, payload: Vec<u8>, actor_id: &str) -> EventId {
        let (id, written) = {
            let mut ring = self.ring();
            let id = self.ids.next(SystemTime::now());
            ring.events.push_back(Event {
                id,
                type_url: type_url.to_string(),
                payload,
                actor_id: actor_id.to_string(),
            });
            if ring.events.len() > self.capacity {
                ring.events.pop_front();
            }
            ring.write_pos += 1;
            (id, ring.write_pos)
        };
        self.written.send_replace(written);
        id
    }

    /// Subscribes with `options`.
    pub fn subscribe(self: &Arc<Self>, options: WatchOptions) -> Subscription {
        let rx = self.written.subscribe();
        let pos = {
            let ring = self.ring();
            let end = ring.write_pos;
            let min = end
                .saturating_sub((self.capacity - self.gap) as u64)
                .max(ring.first_pos());
            let first_matching = |pred: &dyn Fn(&Event) -> bool| {
                (min..end)
                    .find(|&p| ring.at(p).is_some_and(pred))
                    .unwrap_or(end)
            };
            match options.tail {
                Tail::None => end,
                Tail::Count(n) if n < 0 => min,
                Tail::Count(n) => end.saturating_sub(n as u64).max(min),
                Tail::Since(id) => first_matching(&|e| e.id > id),
                Tail::Duration(d) => {
                    let since = SystemTime::now()
                        .checked_sub(d)
                        .unwrap_or(SystemTime::UNIX_EPOCH);
                    first_matching(&|e| e.id.time() > since)
                }
            }
        };
        Subscription {
            bus: Arc::clone(self),
            pos,
            rx,
            actor_id: options.actor_id.filter(|a| !a.is_empty()),
        }
    }
}

/// A stream of events from an [`EventBus`].
#[derive(Debug)]
pub struct Subscription {
    bus: Arc<EventBus>,
    pos: u64,
    rx: watch::Receiver<u64>,
    actor_id: Option<String>,
}

/// What [`Subscription::poll_now`] found.
enum Step {
    Event(Event),
    Skip,
    Wait,
    Lapped,
}

impl Subscription {
    fn poll_now(&mut self) -> Step {
        let ring = self.bus.ring();
        if self.pos >= ring.write_pos {
            return Step::Wait;
        }
        if ring.write_pos - self.pos >= self.bus.capacity as u64 {
            return Step::Lapped;
        }
        let Some(event) = ring.at(self.pos) else {
            return Step::Lapped;
        };
        self.pos += 1;
        match &self.actor_id {
            Some(actor) if *actor != event.actor_id => Step::Skip,
            _ => Step::Event(event.clone()),
        }
    }

    /// The next matching event, waiting for one to be published; `None` when this subscriber
    /// fell a whole ring behind and was dropped. Cancel-safe.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            self.rx.borrow_and_update();
            loop {
                match self.poll_now() {
                    Step::Event(e) => return Some(e),
                    Step::Skip => continue,
                    Step::Lapped => return None,
                    Step::Wait => break,
                }
            }
            if self.rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The next matching event if one is available now (`None` also when lapped).
    pub fn try_next(&mut self) -> Option<Event> {
        loop {
            match self.poll_now() {
                Step::Event(e) => return Some(e),
                Step::Skip => continue,
                Step::Lapped | Step::Wait => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus(cap: usize, gap: usize) -> Arc<EventBus> {
        Arc::new(EventBus::new(cap, gap))
    }

    fn drain(sub: &mut Subscription) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| sub.try_next())
            .map(|e| e.payload)
            .collect()
    }

    #[test]
    fn ids_round_trip_and_order() {
        let b = bus(10, 1);
        let a = b.publish("t", vec![], "");
        let c = b.publish("t", vec![], "");
        assert!(a < c);
        let s = a.to_string();
        assert_eq!(s.len(), 20);
        assert!(s.bytes().all(|c| XID_ALPHABET.contains(&c)));
        assert_eq!(s.parse::<EventId>(), Ok(a));
        let age = SystemTime::now()
            .duration_since(a.time())
            .expect("id time not in the future");
        assert!(age < Duration::from_secs(5));
        // Known xid: bytes 4d88e15b60f486e428412dc9 encode as 9m4e2mr0ui3e8a215n4g.
        let known = EventId::from_bytes([
            0x4d, 0x88, 0xe1, 0x5b, 0x60, 0xf4, 0x86, 0xe4, 0x28, 0x41, 0x2d, 0xc9,
        ]);
        assert_eq!(known.to_string(), "9m4e2mr0ui3e8a215n4g");
        assert_eq!("9m4e2mr0ui3e8a215n4g".parse::<EventId>(), Ok(known));
        assert!("short".parse::<EventId>().is_err());
        assert!("9m4e2mr0ui3e8a215n4z".parse::<EventId>().is_err());
        assert!(
            "9m4e2mr0ui3e8a215n4h".parse::<EventId>().is_err(),
            "padding bits set"
        );
    }

    #[test]
    fn tail_modes() {
        let b = bus(100, 10);
        let ids: Vec<EventId> = (0u8..5).map(|i| b.publish("t", vec![i], "")).collect();

        let mut none = b.subscribe(WatchOptions::default());
        assert!(drain(&mut none).is_empty());

        let mut two = b.subscribe(WatchOptions {
            tail: Tail::Count(2),
            ..Default::default()
        });
        assert_eq!(drain(&mut two), [vec![3], vec![4]]);

        let mut all = b.subscribe(WatchOptions {
            tail: Tail::Count(-1),
            ..Default::default()
        });
        assert_eq!(drain(&mut all).len(), 5);

        let mut since = b.subscribe(WatchOptions {
            tail: Tail::Since(ids[1]),
            ..Default::default()
        });
        assert_eq!(drain(&mut since), [vec![2], vec![3], vec![4]]);

        let mut recent = b.subscribe(WatchOptions {
            tail: Tail::Duration(Duration::from_secs(60)),
            ..Default::default()
        });
        assert_eq!(drain(&mut recent).len(), 5);

        // New events reach everyone.
        b.publish("t", vec![9], "");
        assert_eq!(drain(&mut none), [vec![9]]);
        assert_eq!(drain(&mut two), [vec![9]]);
    }

    #[test]
    fn actor_filter() {
        let b = bus(100, 10);
        b.publish("t", vec![1], "alice");
        b.publish("t", vec![2], "bob");
        b.publish("t", vec![3], "alice");
        let mut s = b.subscribe(WatchOptions {
            tail: Tail::Count(-1),
            actor_id: Some("alice".into()),
        });
        assert_eq!(drain(&mut s), [vec![1], vec![3]]);
    }

    #[test]
    fn gap_hides_oldest_and_lapped_subscribers_end() {
        let b = bus(10, 3);
        for i in 0u8..20 {
            b.publish("t", vec![i], "");
        }
        let mut all = b.subscribe(WatchOptions {
            tail: Tail::Count(-1),
            ..Default::default()
        });
        let got = drain(&mut all);
        assert_eq!(
            got.first(),
            Some(&vec![13]),
            "only capacity - gap = 7 events"
        );
        assert_eq!(got.len(), 7);

        let mut slow = b.subscribe(WatchOptions::default());
        for i in 0u8..10 {
            b.publish("t", vec![i], "");
        }
        assert!(slow.try_next().is_none(), "a whole ring behind: ended");
    }

    #[tokio::test]
    async fn next_waits_for_publication() {
        let b = bus(10, 1);
        let mut s = b.subscribe(WatchOptions::default());
        let publisher = Arc::clone(&b);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            publisher.publish("talos/runtime/x", vec![7], "me");
        });
        let e = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("in time")
            .expect("event");
        assert_eq!(e.payload, [7]);
        assert_eq!(e.actor_id, "me");
        assert_eq!(
            runtime_type_url("machine.ServiceStateEvent"),
            "talos/runtime/machine.ServiceStateEvent"
        );
    }
}
