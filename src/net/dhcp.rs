//! DHCPv4 messages and leases (RFC 2131), encoded and decoded with `dhcproto`.
//!
//! Everything here is pure: building DISCOVER/REQUEST messages, recognising the server's
//! OFFER/ACK/NAK, turning an ACK into a [`Lease`], the routes a lease asks for (classless static
//! routes, option 121, beat the router option as RFC 3442 says) and the lease timers.

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

/// UDP port DHCP servers listen on.
pub const SERVER_PORT: u16 = 67;
/// UDP port DHCP clients listen on.
pub const CLIENT_PORT: u16 = 68;

/// Lease time assumed when the server does not say (Talos: 30 minutes).
pub const DEFAULT_LEASE_TIME: Duration = Duration::from_secs(30 * 60);

/// Lease time value meaning "infinite".
const INFINITE: u32 = u32::MAX;

/// The options networkd asks for (parameter request list, option 55).
pub const REQUESTED_OPTIONS: [OptionCode; 13] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::Hostname,
    OptionCode::DomainName,
    OptionCode::BroadcastAddr,
    OptionCode::NtpServers,
    OptionCode::InterfaceMtu,
    OptionCode::AddressLeaseTime,
    OptionCode::Renewal,
    OptionCode::Rebinding,
    OptionCode::ClasslessStaticRoute,
    OptionCode::DomainSearch,
];

/// Errors decoding or encoding DHCP messages.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// The packet is not a valid DHCP message.
    #[error("malformed DHCP message: {0}")]
    Decode(String),
    /// The message could not be encoded.
    #[error("cannot encode DHCP message: {0}")]
    Encode(String),
    /// A reply lacks something a lease needs.
    #[error("DHCP {what} from {server} is unusable: {reason}")]
    Unusable {
        /// OFFER or ACK.
        what: &'static str,
        /// Who sent it (the server identifier, or the unspecified address).
        server: Ipv4Addr,
        /// What is missing.
        reason: &'static str,
    },
}

/// The client side of one exchange: who we are and what we send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId {
    /// Hardware (MAC) address of the link.
    pub mac: Vec<u8>,
    /// Host name to send (option 12), if any.
    pub hostname: Option<String>,
}

impl ClientId {
    fn base(&self, xid: u32, kind: MessageType, ciaddr: Ipv4Addr, broadcast: bool) -> Message {
        let mut chaddr = self.mac.clone();
        chaddr.truncate(16);
        let mut msg = Message::new_with_id(
            xid,
            ciaddr,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &chaddr,
        );
        msg.set_opcode(Opcode::BootRequest);
        if broadcast {
            msg.set_flags(Flags::default().set_broadcast());
        }
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        let mut client_id = vec![1u8];
        client_id.extend_from_slice(&self.mac);
        opts.insert(DhcpOption::ClientIdentifier(client_id));
        opts.insert(DhcpOption::MaxMessageSize(1500));
        opts.insert(DhcpOption::ParameterRequestList(REQUESTED_OPTIONS.to_vec()));
        if let Some(name) = self.hostname.as_deref().filter(|n| !n.is_empty()) {
            opts.insert(DhcpOption::Hostname(name.to_string()));
        }
        msg
    }

    /// DHCPDISCOVER (broadcast flag set).
    pub fn discover(&self, xid: u32) -> Message {
        self.base(xid, MessageType::Discover, Ipv4Addr::UNSPECIFIED, true)
    }

    /// DHCPREQUEST in SELECTING state: asks for the offered address from the offering server.
    pub fn request_selecting(&self, xid: u32, offer: &Lease) -> Message {
        let mut msg = self.base(xid, MessageType::Request, Ipv4Addr::UNSPECIFIED, true);
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::RequestedIpAddress(offer.address));
        opts.insert(DhcpOption::ServerIdentifier(offer.server));
        msg
    }

    /// DHCPREQUEST in RENEWING (unicast to the server) or REBINDING (broadcast) state: `ciaddr`
    /// is the leased address, no server identifier or requested address.
    pub fn request_extend(&self, xid: u32, address: Ipv4Addr, broadcast: bool) -> Message {
        self.base(xid, MessageType::Request, address, broadcast)
    }
}

/// Encodes a message to bytes.
pub fn encode(msg: &Message) -> Result<Vec<u8>, DhcpError> {
    let mut buf = Vec::with_capacity(576);
    msg.encode(&mut Encoder::new(&mut buf))
        .map_err(|e| DhcpError::Encode(e.to_string()))?;
    Ok(buf)
}

/// Decodes a message from bytes.
pub fn decode(bytes: &[u8]) -> Result<Message, DhcpError> {
    Message::decode(&mut Decoder::new(bytes)).map_err(|e| DhcpError::Decode(e.to_string()))
}

/// A server's answer to one of our requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// DHCPOFFER.
    Offer(Lease),
    /// DHCPACK.
    Ack(Lease),
    /// DHCPNAK, with the server's message if any.
    Nak {
        /// The server identifier.
        server: Ipv4Addr,
        /// Option 56.
        message: Option<String>,
    },
}

/// Recognises a reply to the exchange `xid` of the client with hardware address `mac`.
/// Returns `Ok(None)` for anything that is not ours (other transactions, other clients,
/// requests, unrelated message types).
pub fn classify(msg: &Message, xid: u32, mac: &[u8]) -> Result<Option<Reply>, DhcpError> {
    if msg.opcode() != Opcode::BootReply || msg.xid() != xid {
        return Ok(None);
    }
    let hlen = usize::from(msg.hlen()).min(16);
    if msg.chaddr().get(..hlen) != Some(mac) {
        return Ok(None);
    }
    let server = match msg.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => *s,
        _ => msg.siaddr(),
    };
    match msg.opts().msg_type() {
        Some(MessageType::Offer) => Ok(Some(Reply::Offer(Lease::from_message(msg, "OFFER")?))),
        Some(MessageType::Ack) => Ok(Some(Reply::Ack(Lease::from_message(msg, "ACK")?))),
        Some(MessageType::Nak) => {
            let message = match msg.opts().get(OptionCode::Message) {
                Some(DhcpOption::Message(m)) => Some(m.clone()),
                _ => None,
            };
            Ok(Some(Reply::Nak { server, message }))
        }
        _ => Ok(None),
    }
}

/// A classless static route (option 121) or any route a lease implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRoute {
    /// Destination network.
    pub destination: Ipv4Addr,
    /// Destination prefix length (0 for the default route).
    pub prefix_len: u8,
    /// Next hop; `None` (0.0.0.0 in option 121) for an on-link route.
    pub gateway: Option<Ipv4Addr>,
    /// Whether this is an on-link host route to a gateway outside the subnet.
    pub link_scope: bool,
}

/// What an OFFER or ACK grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// `yiaddr`.
    pub address: Ipv4Addr,
    /// Prefix length from the subnet mask (option 1).
    pub prefix_len: u8,
    /// Server identifier (option 54, else `siaddr`).
    pub server: Ipv4Addr,
    /// Routers (option 3).
    pub routers: Vec<Ipv4Addr>,
    /// Classless static routes (option 121).
    pub classless_routes: Vec<LeaseRoute>,
    /// DNS servers (option 6).
    pub dns: Vec<Ipv4Addr>,
    /// Domain name (option 15).
    pub domain: Option<String>,
    /// Domain search list (option 119).
    pub search: Vec<String>,
    /// Host name (option 12).
    pub hostname: Option<String>,
    /// NTP servers (option 42).
    pub ntp: Vec<Ipv4Addr>,
    /// Interface MTU (option 26).
    pub mtu: Option<u16>,
    /// Broadcast address (option 28).
    pub broadcast: Option<Ipv4Addr>,
    /// Lease time (option 51); `None` means infinite.
    pub lease_time: Option<Duration>,
    /// T1 (option 58), if the server set it.
    pub renew_time: Option<Duration>,
    /// T2 (option 59), if the server set it.
    pub rebind_time: Option<Duration>,
}

fn mask_to_prefix(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    // A valid mask is contiguous ones followed by zeros.
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

fn secs(v: u32) -> Option<Duration> {
    (v != INFINITE).then(|| Duration::from_secs(u64::from(v)))
}

impl Lease {
    /// Reads a lease from an OFFER or ACK.
    pub fn from_message(msg: &Message, what: &'static str) -> Result<Self, DhcpError> {
        let opts = msg.opts();
        let server = match opts.get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(s)) => *s,
            _ => msg.siaddr(),
        };
        let unusable = |reason| DhcpError::Unusable {
            what,
            server,
            reason,
        };
        let address = msg.yiaddr();
        if address.is_unspecified() {
            return Err(unusable("no address offered (yiaddr is 0.0.0.0)"));
        }
        let prefix_len = match opts.get(OptionCode::SubnetMask) {
            Some(DhcpOption::SubnetMask(m)) => {
                mask_to_prefix(*m).ok_or_else(|| unusable("subnet mask is not contiguous"))?
            }
            // No mask: the classful default is not worth guessing; use a host route.
            _ => 32,
        };
        let mut lease = Lease {
            address,
            prefix_len,
            server,
            routers: Vec::new(),
            classless_routes: Vec::new(),
            dns: Vec::new(),
            domain: None,
            search: Vec::new(),
            hostname: None,
            ntp: Vec::new(),
            mtu: None,
            broadcast: None,
            lease_time: Some(DEFAULT_LEASE_TIME),
            renew_time: None,
            rebind_time: None,
        };
        for (_, opt) in opts.iter() {
            match opt {
                DhcpOption::Router(r) => lease.routers = r.clone(),
                DhcpOption::DomainNameServer(d) => lease.dns = d.clone(),
                DhcpOption::DomainName(d) if !d.is_empty() => lease.domain = Some(d.clone()),
                DhcpOption::Hostname(h) if !h.is_empty() => lease.hostname = Some(h.clone()),
                DhcpOption::NtpServers(n) => lease.ntp = n.clone(),
                DhcpOption::InterfaceMtu(m) if *m >= 68 => lease.mtu = Some(*m),
                DhcpOption::BroadcastAddr(b) => lease.broadcast = Some(*b),
                DhcpOption::AddressLeaseTime(t) => lease.lease_time = secs(*t),
                DhcpOption::Renewal(t) => lease.renew_time = secs(*t),
                DhcpOption::Rebinding(t) => lease.rebind_time = secs(*t),
                DhcpOption::DomainSearch(names) => {
                    lease.search = names
                        .iter()
                        .map(|n| n.to_string().trim_end_matches('.').to_string())
                        .filter(|n| !n.is_empty())
                        .collect();
                }
                DhcpOption::ClasslessStaticRoute(routes) => {
                    lease.classless_routes = routes
                        .iter()
                        .map(|(net, gw)| LeaseRoute {
                            destination: net.network(),
                            prefix_len: net.prefix_len(),
                            gateway: (!gw.is_unspecified()).then_some(*gw),
                            link_scope: false,
                        })
                        .collect();
                }
                _ => {}
            }
        }
        Ok(lease)
    }

    /// The network the address is in.
    pub fn network(&self) -> Ipv4Addr {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        Ipv4Addr::from(u32::from(self.address) & mask)
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.address) & mask
    }

    /// The routes this lease asks for: the classless static routes when there are any (the
    /// router option is then ignored, RFC 3442), else a default route through each router, each
    /// preceded by an on-link host route when the router is outside the leased subnet.
    pub fn routes(&self) -> Vec<LeaseRoute> {
        if !self.classless_routes.is_empty() {
            return self.classless_routes.clone();
        }
        let mut out = Vec::new();
        for gw in &self.routers {
            if !self.contains(*gw) {
                out.push(LeaseRoute {
                    destination: *gw,
                    prefix_len: 32,
                    gateway: None,
                    link_scope: true,
                });
            }
            out.push(LeaseRoute {
                destination: Ipv4Addr::UNSPECIFIED,
                prefix_len: 0,
                gateway: Some(*gw),
                link_scope: false,
            });
        }
        out
    }

    /// The default gateway (for log lines): the first default route's next hop.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.routes()
            .iter()
            .find(|r| r.prefix_len == 0)
            .and_then(|r| r.gateway)
    }

    /// The lease's timers.
    pub fn timers(&self) -> LeaseTimers {
        LeaseTimers::new(self.lease_time, self.renew_time, self.rebind_time)
    }

    /// Lifetime for the kernel address in seconds (`None`: permanent).
    pub fn address_lifetime(&self) -> Option<u32> {
        self.lease_time
            .map(|d| u32::try_from(d.as_secs()).unwrap_or(INFINITE - 1))
    }
}

/// When to renew (T1), rebind (T2) and give up (expiry), relative to the moment of the ACK.
/// `None` everywhere for an infinite lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimers {
    /// T1: start unicasting REQUESTs to the server.
    pub renew: Option<Duration>,
    /// T2: start broadcasting REQUESTs to any server.
    pub rebind: Option<Duration>,
    /// The lease ends; the address must go.
    pub expiry: Option<Duration>,
}

impl LeaseTimers {
    /// T1 defaults to half the lease, T2 to 7/8 of it (RFC 2131 §4.4.5); out-of-order values
    /// from the server are clamped so that T1 ≤ T2 ≤ lease.
    pub fn new(lease: Option<Duration>, t1: Option<Duration>, t2: Option<Duration>) -> Self {
        let Some(lease) = lease else {
            return Self {
                renew: None,
                rebind: None,
                expiry: None,
            };
        };
        let rebind = t2.filter(|t| *t <= lease).unwrap_or(lease * 7 / 8);
        let renew = t1
            .filter(|t| *t <= rebind)
            .unwrap_or_else(|| (lease / 2).min(rebind));
        Self {
            renew: Some(renew),
            rebind: Some(rebind),
            expiry: Some(lease),
        }
    }
}

/// Retransmission delay before attempt `attempt` (0-based) while selecting: `base` doubled each
/// time, capped at `cap` (RFC 2131 §4.1 uses 4 s doubling to 64 s). The caller adds jitter.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(cap)
}

/// How long to wait for an answer while renewing or rebinding: half the time left until the
/// next deadline, but at least `floor` and never past the deadline (RFC 2131 §4.4.5).
pub fn extend_wait(remaining: Duration, floor: Duration) -> Duration {
    (remaining / 2).max(floor).min(remaining)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::UnknownOption;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    fn client() -> ClientId {
        ClientId {
            mac: MAC.to_vec(),
            hostname: Some("node-1".into()),
        }
    }

    fn reply(kind: MessageType, xid: u32) -> Message {
        let mut m = Message::new_with_id(
            xid,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(10, 0, 2, 15),
            Ipv4Addr::new(10, 0, 2, 2),
            Ipv4Addr::UNSPECIFIED,
            &MAC,
        );
        m.set_opcode(Opcode::BootReply);
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        o.insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 2, 2)));
        o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        o.insert(DhcpOption::Router(vec![Ipv4Addr::new(10, 0, 2, 2)]));
        o.insert(DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
            10, 0, 2, 3,
        )]));
        o.insert(DhcpOption::AddressLeaseTime(86400));
        m
    }

    fn roundtrip(m: &Message) -> Message {
        decode(&encode(m).expect("encode")).expect("decode")
    }

    #[test]
    fn discover_carries_what_talos_asks_for() {
        let m = roundtrip(&client().discover(0xdead_beef));
        assert_eq!(m.opcode(), Opcode::BootRequest);
        assert_eq!(m.xid(), 0xdead_beef);
        assert!(m.flags().broadcast());
        assert_eq!(m.chaddr(), &MAC);
        assert_eq!(m.opts().msg_type(), Some(MessageType::Discover));
        let Some(DhcpOption::ParameterRequestList(list)) =
            m.opts().get(OptionCode::ParameterRequestList)
        else {
            panic!("no parameter request list");
        };
        for code in [
            OptionCode::SubnetMask,
            OptionCode::Router,
            OptionCode::DomainNameServer,
            OptionCode::DomainName,
            OptionCode::Hostname,
            OptionCode::NtpServers,
            OptionCode::InterfaceMtu,
            OptionCode::ClasslessStaticRoute,
            OptionCode::AddressLeaseTime,
            OptionCode::Renewal,
            OptionCode::Rebinding,
        ] {
            assert!(list.contains(&code), "{code:?} not requested");
        }
        assert_eq!(
            m.opts().get(OptionCode::Hostname),
            Some(&DhcpOption::Hostname("node-1".into()))
        );
        assert!(m.opts().get(OptionCode::RequestedIpAddress).is_none());
    }

    #[test]
    fn requests_in_each_state() {
        let offer = Lease::from_message(&reply(MessageType::Offer, 7), "OFFER").expect("lease");
        let m = roundtrip(&client().request_selecting(7, &offer));
        assert_eq!(m.opts().msg_type(), Some(MessageType::Request));
        assert_eq!(
            m.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 0, 2, 15)))
        );
        assert_eq!(
            m.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 2, 2)))
        );
        assert!(m.ciaddr().is_unspecified());

        let renew = roundtrip(&client().request_extend(8, Ipv4Addr::new(10, 0, 2, 15), false));
        assert_eq!(renew.ciaddr(), Ipv4Addr::new(10, 0, 2, 15));
        assert!(!renew.flags().broadcast());
        assert!(renew.opts().get(OptionCode::ServerIdentifier).is_none());
        assert!(renew.opts().get(OptionCode::RequestedIpAddress).is_none());
        let rebind = client().request_extend(9, Ipv4Addr::new(10, 0, 2, 15), true);
        assert!(rebind.flags().broadcast());
    }

    #[test]
    fn no_hostname_option_without_a_name() {
        let c = ClientId {
            mac: MAC.to_vec(),
            hostname: None,
        };
        assert!(c.discover(1).opts().get(OptionCode::Hostname).is_none());
    }

    #[test]
    fn classify_filters_and_parses() {
        let ack = roundtrip(&reply(MessageType::Ack, 42));
        let Ok(Some(Reply::Ack(lease))) = classify(&ack, 42, &MAC) else {
            panic!("not an ACK");
        };
        assert_eq!(lease.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(lease.prefix_len, 24);
        assert_eq!(lease.server, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(lease.dns, vec![Ipv4Addr::new(10, 0, 2, 3)]);
        assert_eq!(lease.lease_time, Some(Duration::from_secs(86400)));
        assert_eq!(lease.gateway(), Some(Ipv4Addr::new(10, 0, 2, 2)));
        // Other transaction, other client, a request: not ours.
        assert_eq!(classify(&ack, 43, &MAC).expect("classify"), None);
        assert_eq!(
            classify(&ack, 42, &[1, 2, 3, 4, 5, 6]).expect("classify"),
            None
        );
        let req = client().discover(42);
        assert_eq!(classify(&req, 42, &MAC).expect("classify"), None);

        let offer = reply(MessageType::Offer, 1);
        assert!(matches!(
            classify(&offer, 1, &MAC),
            Ok(Some(Reply::Offer(_)))
        ));

        let mut nak = reply(MessageType::Nak, 5);
        nak.set_yiaddr(Ipv4Addr::UNSPECIFIED);
        nak.opts_mut()
            .insert(DhcpOption::Message("wrong network".into()));
        assert_eq!(
            classify(&roundtrip(&nak), 5, &MAC).expect("classify"),
            Some(Reply::Nak {
                server: Ipv4Addr::new(10, 0, 2, 2),
                message: Some("wrong network".into())
            })
        );
    }

    #[test]
    fn ack_without_address_is_unusable() {
        let mut m = reply(MessageType::Ack, 3);
        m.set_yiaddr(Ipv4Addr::UNSPECIFIED);
        let err = classify(&m, 3, &MAC).expect_err("unusable");
        assert!(err.to_string().contains("no address"), "{err}");
    }

    #[test]
    fn all_lease_options_are_read() {
        let mut m = reply(MessageType::Ack, 1);
        let o = m.opts_mut();
        o.insert(DhcpOption::DomainName("example.org".into()));
        o.insert(DhcpOption::Hostname("node-a".into()));
        o.insert(DhcpOption::NtpServers(vec![Ipv4Addr::new(10, 0, 2, 4)]));
        o.insert(DhcpOption::InterfaceMtu(1400));
        o.insert(DhcpOption::Renewal(100));
        o.insert(DhcpOption::Rebinding(150));
        o.insert(DhcpOption::AddressLeaseTime(200));
        let l = Lease::from_message(&roundtrip(&m), "ACK").expect("lease");
        assert_eq!(l.domain.as_deref(), Some("example.org"));
        assert_eq!(l.hostname.as_deref(), Some("node-a"));
        assert_eq!(l.ntp, vec![Ipv4Addr::new(10, 0, 2, 4)]);
        assert_eq!(l.mtu, Some(1400));
        assert_eq!(
            l.timers(),
            LeaseTimers {
                renew: Some(Duration::from_secs(100)),
                rebind: Some(Duration::from_secs(150)),
                expiry: Some(Duration::from_secs(200)),
            }
        );
        assert_eq!(l.address_lifetime(), Some(200));
    }

    #[test]
    fn option_121_is_decoded_and_beats_the_router() {
        // RFC 3442 encoding: width, significant octets of the destination, router.
        // 0.0.0.0/0 via 10.0.2.1; 192.168.0.0/16 via 10.0.2.9; 10.0.3.0/24 on-link.
        let raw = vec![
            0, 10, 0, 2, 1, //
            16, 192, 168, 10, 0, 2, 9, //
            24, 10, 0, 3, 0, 0, 0, 0,
        ];
        let mut m = reply(MessageType::Ack, 1);
        m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(
            OptionCode::ClasslessStaticRoute,
            raw,
        )));
        let l = Lease::from_message(&roundtrip(&m), "ACK").expect("lease");
        assert_eq!(
            l.routes(),
            vec![
                LeaseRoute {
                    destination: Ipv4Addr::UNSPECIFIED,
                    prefix_len: 0,
                    gateway: Some(Ipv4Addr::new(10, 0, 2, 1)),
                    link_scope: false
                },
                LeaseRoute {
                    destination: Ipv4Addr::new(192, 168, 0, 0),
                    prefix_len: 16,
                    gateway: Some(Ipv4Addr::new(10, 0, 2, 9)),
                    link_scope: false
                },
                LeaseRoute {
                    destination: Ipv4Addr::new(10, 0, 3, 0),
                    prefix_len: 24,
                    gateway: None,
                    link_scope: false
                },
            ]
        );
        // The router option (10.0.2.2) is ignored.
        assert_eq!(l.gateway(), Some(Ipv4Addr::new(10, 0, 2, 1)));
    }

    #[test]
    fn router_outside_the_subnet_gets_an_onlink_route() {
        let mut m = reply(MessageType::Ack, 1);
        m.opts_mut()
            .insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 255)));
        m.opts_mut()
            .insert(DhcpOption::Router(vec![Ipv4Addr::new(169, 254, 1, 1)]));
        let l = Lease::from_message(&m, "ACK").expect("lease");
        assert_eq!(l.prefix_len, 32);
        let routes = l.routes();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].destination, Ipv4Addr::new(169, 254, 1, 1));
        assert_eq!(routes[0].prefix_len, 32);
        assert!(routes[0].link_scope);
        assert_eq!(routes[1].gateway, Some(Ipv4Addr::new(169, 254, 1, 1)));
    }

    #[test]
    fn masks() {
        assert_eq!(mask_to_prefix(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(mask_to_prefix(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(mask_to_prefix(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
        assert_eq!(mask_to_prefix(Ipv4Addr::new(255, 0, 255, 0)), None);
        let l = Lease::from_message(&reply(MessageType::Ack, 1), "ACK").expect("lease");
        assert_eq!(l.network(), Ipv4Addr::new(10, 0, 2, 0));
    }

    #[test]
    fn timers_default_and_clamp() {
        let t = LeaseTimers::new(Some(Duration::from_secs(800)), None, None);
        assert_eq!(t.renew, Some(Duration::from_secs(400)));
        assert_eq!(t.rebind, Some(Duration::from_secs(700)));
        assert_eq!(t.expiry, Some(Duration::from_secs(800)));
        // T2 beyond the lease and T1 beyond T2 are ignored.
        let t = LeaseTimers::new(
            Some(Duration::from_secs(100)),
            Some(Duration::from_secs(95)),
            Some(Duration::from_secs(200)),
        );
        assert_eq!(t.rebind, Some(Duration::from_millis(87_500)));
        assert_eq!(t.renew, Some(Duration::from_secs(50)));
        // Infinite lease: no timers.
        let t = LeaseTimers::new(None, None, None);
        assert_eq!(t.renew, None);
        assert_eq!(t.expiry, None);
        let mut m = reply(MessageType::Ack, 1);
        m.opts_mut().insert(DhcpOption::AddressLeaseTime(u32::MAX));
        let l = Lease::from_message(&m, "ACK").expect("lease");
        assert_eq!(l.lease_time, None);
        assert_eq!(l.address_lifetime(), None);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_secs(4);
        let cap = Duration::from_secs(64);
        let got: Vec<u64> = (0..7).map(|i| backoff(i, base, cap).as_secs()).collect();
        assert_eq!(got, vec![4, 8, 16, 32, 64, 64, 64]);
        assert_eq!(backoff(100, base, cap), cap);
    }

    #[test]
    fn extend_wait_halves_within_bounds() {
        let floor = Duration::from_secs(1);
        assert_eq!(
            extend_wait(Duration::from_secs(100), floor),
            Duration::from_secs(50)
        );
        assert_eq!(
            extend_wait(Duration::from_secs(1), floor),
            Duration::from_secs(1)
        );
        assert_eq!(
            extend_wait(Duration::from_millis(300), floor),
            Duration::from_millis(300)
        );
    }
}
