//! The DHCPv4 client of one link: INIT → SELECTING → REQUESTING → BOUND → RENEWING → REBINDING
//! (RFC 2131 §4.4), on a UDP socket bound to `0.0.0.0:68` and to the link (`SO_BINDTODEVICE`).
//!
//! The client does not touch the kernel's addresses itself: it reports [`LeaseEvent`]s on a
//! channel and whoever owns the link applies them (see [`super::apply`]). It retransmits with
//! exponential back-off while selecting, renews at T1 (unicast to the server), rebinds at T2
//! (broadcast), and reports the lease lost when it expires or a server answers NAK, then
//! starts over.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::time::Duration;

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
use rand::Rng as _;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::dhcp::{self, ClientId, Lease, LeaseTimers, Reply};
use crate::errors::chain;

/// What happened to a link's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseEvent {
    /// A lease was acquired (`renewed: false`) or extended (`renewed: true`).
    Bound {
        /// The lease as the last ACK granted it.
        lease: Lease,
        /// Whether this extends the lease already bound.
        renewed: bool,
    },
    /// The lease is gone (expired, or the server refused it); its address must be removed.
    Lost {
        /// The lease that ended.
        lease: Lease,
        /// Why (`expired`, `NAK: …`).
        reason: String,
    },
}

/// Settings of one client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Link name.
    pub link: String,
    /// Who we are (MAC, host name to send).
    pub id: ClientId,
    /// First retransmission delay while selecting (RFC 2131: 4 s).
    pub retransmit_base: Duration,
    /// Longest retransmission delay while selecting (RFC 2131: 64 s).
    pub retransmit_cap: Duration,
    /// Shortest wait between REQUESTs while renewing or rebinding (RFC 2131: 60 s), never
    /// longer than the time left.
    pub extend_floor: Duration,
    /// REQUEST attempts in REQUESTING state before going back to INIT.
    pub request_attempts: u32,
}

impl ClientConfig {
    /// RFC 2131 timings for `link`.
    pub fn new(link: impl Into<String>, id: ClientId) -> Self {
        Self {
            link: link.into(),
            id,
            retransmit_base: Duration::from_secs(4),
            retransmit_cap: Duration::from_secs(64),
            extend_floor: Duration::from_secs(60),
            request_attempts: 4,
        }
    }
}

/// Errors that stop a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The DHCP socket could not be set up.
    #[error("cannot open the DHCP socket on {link}")]
    Socket {
        /// Link name.
        link: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// Sending or receiving failed.
    #[error("DHCP I/O on {link} failed")]
    Io {
        /// Link name.
        link: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// Building a message failed.
    #[error(transparent)]
    Dhcp(#[from] dhcp::DhcpError),
}

/// Opens a UDP socket on `0.0.0.0:68` bound to `link`, with broadcast allowed.
pub fn bind_socket(link: &str) -> io::Result<UdpSocket> {
    let fd: OwnedFd = socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    socket::setsockopt(&fd, sockopt::Broadcast, &true)?;
    socket::setsockopt(&fd, sockopt::BindToDevice, &std::ffi::OsString::from(link))?;
    let addr = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, dhcp::CLIENT_PORT));
    socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    let std_sock = std::net::UdpSocket::from(fd);
    UdpSocket::from_std(std_sock)
}

/// The outcome of renewing/rebinding.
enum Extend {
    Acked(Box<Lease>, Instant),
    Nak(String),
    Expired,
}

/// One link's DHCP client.
pub struct Client {
    cfg: ClientConfig,
    sock: UdpSocket,
    events: mpsc::Sender<LeaseEvent>,
}

impl Client {
    /// Opens the socket for `cfg.link`; events go to `events`.
    pub fn new(cfg: ClientConfig, events: mpsc::Sender<LeaseEvent>) -> Result<Self, ClientError> {
        let sock = bind_socket(&cfg.link).map_err(|source| ClientError::Socket {
            link: cfg.link.clone(),
            source,
        })?;
        Ok(Self { cfg, sock, events })
    }

    fn io(&self) -> impl FnOnce(io::Error) -> ClientError + '_ {
        move |source| ClientError::Io {
            link: self.cfg.link.clone(),
            source,
        }
    }

    fn jitter(d: Duration) -> Duration {
        let quarter = u64::try_from(d.as_millis() / 4).unwrap_or(0);
        d + Duration::from_millis(rand::thread_rng().gen_range(0..=quarter))
    }

    async fn send(&self, msg: &dhcproto::v4::Message, to: Ipv4Addr) -> Result<(), ClientError> {
        let bytes = dhcp::encode(msg)?;
        self.sock
            .send_to(
                &bytes,
                SocketAddr::V4(SocketAddrV4::new(to, dhcp::SERVER_PORT)),
            )
            .await
            .map_err(self.io())?;
        Ok(())
    }

    /// Waits until `deadline` for a reply to `xid`; anything else is dropped.
    async fn receive(&self, xid: u32, deadline: Instant) -> Result<Option<Reply>, ClientError> {
        let mut buf = vec![0u8; 4096];
        loop {
            let got = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf)).await;
            let (n, from) = match got {
                Err(_) => return Ok(None),
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    // Transient (e.g. the link went down): wait a little, keep the deadline.
                    tracing::warn!("DHCP receive on {}: {e}", self.cfg.link);
                    tokio::time::sleep_until(deadline.min(Instant::now() + Duration::from_secs(1)))
                        .await;
                    continue;
                }
            };
            let msg = match dhcp::decode(&buf[..n]) {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(
                        "DHCP on {}: dropping packet from {from}: {e}",
                        self.cfg.link
                    );
                    continue;
                }
            };
            match dhcp::classify(&msg, xid, &self.cfg.id.mac) {
                Ok(Some(reply)) => return Ok(Some(reply)),
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("DHCP on {}: {e}", self.cfg.link);
                    continue;
                }
            }
        }
    }

    /// SELECTING: DISCOVER until an OFFER arrives, backing off.
    async fn select(&self) -> Result<Lease, ClientError> {
        let mut attempt = 0u32;
        loop {
            let xid: u32 = rand::random();
            let wait = Self::jitter(dhcp::backoff(
                attempt,
                self.cfg.retransmit_base,
                self.cfg.retransmit_cap,
            ));
            tracing::debug!(
                "DHCP DISCOVER on {} (attempt {})",
                self.cfg.link,
                attempt + 1
            );
            if let Err(e) = self
                .send(&self.cfg.id.discover(xid), Ipv4Addr::BROADCAST)
                .await
            {
                // No carrier yet, link down, …: try again after the back-off.
                tracing::warn!("{}", chain(&e));
            }
            let deadline = Instant::now() + wait;
            while let Some(reply) = self.receive(xid, deadline).await? {
                if let Reply::Offer(offer) = reply {
                    tracing::info!(
                        "DHCP OFFER on {}: {}/{} from {}",
                        self.cfg.link,
                        offer.address,
                        offer.prefix_len,
                        offer.server
                    );
                    return Ok(offer);
                }
            }
            attempt = attempt.saturating_add(1);
        }
    }

    /// REQUESTING: ask for the offer. `Ok(None)` means start over (NAK or no answer).
    async fn request(&self, offer: &Lease) -> Result<Option<(Lease, Instant)>, ClientError> {
        let xid: u32 = rand::random();
        for attempt in 0..self.cfg.request_attempts {
            let sent = Instant::now();
            if let Err(e) = self
                .send(
                    &self.cfg.id.request_selecting(xid, offer),
                    Ipv4Addr::BROADCAST,
                )
                .await
            {
                tracing::warn!("{}", chain(&e));
            }
            let wait = Self::jitter(dhcp::backoff(
                attempt,
                self.cfg.retransmit_base,
                self.cfg.retransmit_cap,
            ));
            let deadline = Instant::now() + wait;
            while let Some(reply) = self.receive(xid, deadline).await? {
                match reply {
                    Reply::Ack(lease) => return Ok(Some((lease, sent))),
                    Reply::Nak { server, message } => {
                        let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
                        tracing::warn!("DHCP NAK on {} from {server}{detail}", self.cfg.link);
                        return Ok(None);
                    }
                    Reply::Offer(_) => {}
                }
            }
        }
        tracing::warn!(
            "DHCP on {}: no answer to REQUEST for {}, restarting",
            self.cfg.link,
            offer.address
        );
        Ok(None)
    }

    /// RENEWING until T2 (unicast to the server), then REBINDING until expiry (broadcast).
    async fn extend(
        &self,
        lease: &Lease,
        acquired: Instant,
        timers: LeaseTimers,
    ) -> Result<Extend, ClientError> {
        let (Some(t2), Some(expiry)) = (timers.rebind, timers.expiry) else {
            return Ok(Extend::Expired);
        };
        let rebind_at = acquired + t2;
        let expire_at = acquired + expiry;
        let xid: u32 = rand::random();
        loop {
            let now = Instant::now();
            if now >= expire_at {
                return Ok(Extend::Expired);
            }
            let rebinding = now >= rebind_at;
            let until = if rebinding { expire_at } else { rebind_at };
            let wait = dhcp::extend_wait(until - now, self.cfg.extend_floor);
            let msg = self.cfg.id.request_extend(xid, lease.address, rebinding);
            let to = if rebinding {
                Ipv4Addr::BROADCAST
            } else {
                lease.server
            };
            tracing::debug!(
                "DHCP {} on {}: REQUEST for {} to {to}",
                if rebinding { "rebind" } else { "renew" },
                self.cfg.link,
                lease.address
            );
            let sent = Instant::now();
            if let Err(e) = self.send(&msg, to).await {
                // A unicast renew can fail while routes are in flux; treat it as lost.
                tracing::warn!("{}", chain(&e));
            }
            while let Some(reply) = self.receive(xid, sent + wait).await? {
                match reply {
                    Reply::Ack(new) => return Ok(Extend::Acked(Box::new(new), sent)),
                    Reply::Nak { server, message } => {
                        let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
                        return Ok(Extend::Nak(format!("NAK from {server}{detail}")));
                    }
                    Reply::Offer(_) => {}
                }
            }
        }
    }

    async fn emit(&self, ev: LeaseEvent) -> bool {
        self.events.send(ev).await.is_ok()
    }

    /// Runs forever (until the event receiver is dropped or the socket fails).
    pub async fn run(self) -> Result<(), ClientError> {
        loop {
            let offer = self.select().await?;
            let Some((mut lease, mut acquired)) = self.request(&offer).await? else {
                tokio::time::sleep(Self::jitter(self.cfg.retransmit_base)).await;
                continue;
            };
            if !self
                .emit(LeaseEvent::Bound {
                    lease: lease.clone(),
                    renewed: false,
                })
                .await
            {
                return Ok(());
            }
            // BOUND.
            loop {
                let timers = lease.timers();
                let Some(t1) = timers.renew else {
                    // Infinite lease: nothing more to do.
                    std::future::pending::<()>().await;
                    return Ok(());
                };
                tokio::time::sleep_until(acquired + t1).await;
                match self.extend(&lease, acquired, timers).await? {
                    Extend::Acked(new, sent) => {
                        let same =
                            new.address == lease.address && new.prefix_len == lease.prefix_len;
                        if !same
                            && !self
                                .emit(LeaseEvent::Lost {
                                    lease: lease.clone(),
                                    reason: format!("server moved us to {}", new.address),
                                })
                                .await
                        {
                            return Ok(());
                        }
                        lease = *new;
                        acquired = sent;
                        if !self
                            .emit(LeaseEvent::Bound {
                                lease: lease.clone(),
                                renewed: same,
                            })
                            .await
                        {
                            return Ok(());
                        }
                    }
                    Extend::Nak(reason) => {
                        if !self.emit(LeaseEvent::Lost { lease, reason }).await {
                            return Ok(());
                        }
                        break;
                    }
                    Extend::Expired => {
                        if !self
                            .emit(LeaseEvent::Lost {
                                lease,
                                reason: "expired".into(),
                            })
                            .await
                        {
                            return Ok(());
                        }
                        break;
                    }
                }
            }
        }
    }
}
