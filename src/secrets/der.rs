//! A minimal DER writer: just the ASN.1 shapes X.509 certificates and CSRs need, and the X.509
//! pieces both build from (names, subject alternative names, extensions).
//!
//! Values are built bottom-up as byte vectors; `tlv` wraps contents in a tag and a definite length.

use std::net::IpAddr;

/// ASN.1 universal tags used here.
pub(crate) mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
}

/// Encodes one tag-length-value element.
pub(crate) fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    let len = contents.len();
    if len < 0x80 {
        // Short form; the cast cannot truncate because len < 128.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// A SEQUENCE of already-encoded elements.
pub(crate) fn sequence(items: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &items.concat())
}

/// A SET OF already-encoded elements, sorted by their encodings as DER requires.
pub(crate) fn set_of(mut items: Vec<Vec<u8>>) -> Vec<u8> {
    items.sort();
    tlv(tag::SET, &items.concat())
}

/// A context-specific, constructed, explicit tag `[n]`.
pub(crate) fn explicit(n: u8, inner: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, inner)
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub(crate) fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let skip = magnitude.iter().take_while(|b| **b == 0).count();
        &magnitude[skip..]
    };
    let mut body = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.is_empty() || trimmed[0] & 0x80 != 0 {
        body.push(0);
    }
    body.extend_from_slice(trimmed);
    tlv(tag::INTEGER, &body)
}

/// A small INTEGER.
pub(crate) fn small_integer(v: u8) -> Vec<u8> {
    unsigned_integer(&[v])
}

/// BOOLEAN TRUE.
pub(crate) fn bool_true() -> Vec<u8> {
    tlv(tag::BOOLEAN, &[0xff])
}

/// A BIT STRING with no unused bits.
pub(crate) fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(bytes.len() + 1);
    body.push(0);
    body.extend_from_slice(bytes);
    tlv(tag::BIT_STRING, &body)
}

/// An OCTET STRING.
pub(crate) fn octet_string(bytes: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, bytes)
}

/// NULL.
pub(crate) fn null() -> Vec<u8> {
    tlv(tag::NULL, &[])
}

/// An OBJECT IDENTIFIER from its arcs.
pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    if arcs.len() >= 2 {
        push_base128(&mut body, arcs[0] * 40 + arcs[1]);
    }
    for arc in arcs.iter().skip(2) {
        push_base128(&mut body, *arc);
    }
    tlv(tag::OID, &body)
}

fn push_base128(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    let last = tmp.len() - 1;
    for (j, b) in tmp.iter().enumerate().skip(i) {
        out.push(if j == last { *b } else { *b | 0x80 });
    }
}

/// A string as Go's encoding/asn1 writes it: PrintableString when every character allows it,
/// UTF8String otherwise.
pub(crate) fn directory_string(s: &str) -> Vec<u8> {
    let printable = s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
            )
    });
    let t = if printable {
        tag::PRINTABLE_STRING
    } else {
        tag::UTF8_STRING
    };
    tlv(t, s.as_bytes())
}

/// A point in time with second precision: UTCTime for 1950..2049, GeneralizedTime otherwise.
pub(crate) fn time(t: time::OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = t.year();
    let (mo, d, h, mi, s) = (
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    );
    if (1950..2050).contains(&year) {
        let text = format!(
            "{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z",
            year.rem_euclid(100)
        );
        tlv(tag::UTC_TIME, text.as_bytes())
    } else {
        let text = format!("{year:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
        tlv(tag::GENERALIZED_TIME, text.as_bytes())
    }
}

// ---- X.509 building blocks shared by certificates and CSRs -----------------------------------

/// id-at-organizationName.
const OID_ORGANIZATION: &[u64] = &[2, 5, 4, 10];
/// id-at-commonName.
const OID_COMMON_NAME: &[u64] = &[2, 5, 4, 3];
/// id-ce-subjectAltName.
pub(crate) const OID_SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];

/// Encodes a distinguished name the way Go's `pkix.Name` does for O and CN: all organizations in
/// one multi-valued RDN, then the common name.
pub(crate) fn name(organizations: &[String], common_name: Option<&str>) -> Vec<u8> {
    let mut rdns: Vec<Vec<u8>> = Vec::new();
    let atv = |arcs: &[u64], v: &str| sequence(&[&oid(arcs), &directory_string(v)]);
    if !organizations.is_empty() {
        rdns.push(set_of(
            organizations
                .iter()
                .map(|o| atv(OID_ORGANIZATION, o))
                .collect(),
        ));
    }
    if let Some(cn) = common_name.filter(|c| !c.is_empty()) {
        rdns.push(set_of(vec![atv(OID_COMMON_NAME, cn)]));
    }
    tlv(tag::SEQUENCE, &rdns.concat())
}

/// A SubjectAltName extension value: DNS names, then IP addresses (IPv4-mapped IPv6 as IPv4).
pub(crate) fn subject_alt_name(dns_names: &[String], ips: &[IpAddr]) -> Vec<u8> {
    let mut names = Vec::new();
    for d in dns_names {
        names.extend(tlv(0x82, d.as_bytes()));
    }
    for ip in ips {
        match ip {
            IpAddr::V4(v4) => names.extend(tlv(0x87, &v4.octets())),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => names.extend(tlv(0x87, &v4.octets())),
                None => names.extend(tlv(0x87, &v6.octets())),
            },
        }
    }
    tlv(tag::SEQUENCE, &names)
}

/// One X.509 extension: its OID, the critical flag when set, and the DER value.
pub(crate) fn extension(arcs: &[u64], critical: bool, value: &[u8]) -> Vec<u8> {
    if critical {
        sequence(&[&oid(arcs), &bool_true(), &octet_string(value)])
    } else {
        sequence(&[&oid(arcs), &octet_string(value)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    #[test]
    fn lengths_use_short_and_long_forms() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0u8; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = tlv(0x04, &[0u8; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(unsigned_integer(&[0, 0, 5]), vec![0x02, 1, 5]);
        assert_eq!(unsigned_integer(&[0x80]), vec![0x02, 2, 0, 0x80]);
        assert_eq!(unsigned_integer(&[]), vec![0x02, 1, 0]);
    }

    #[test]
    fn oids_encode_like_openssl() {
        // 1.2.840.10045.2.1 (id-ecPublicKey)
        assert_eq!(
            oid(&[1, 2, 840, 10045, 2, 1]),
            vec![0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]
        );
        assert_eq!(oid(&[1, 3, 101, 112]), vec![0x06, 3, 0x2b, 0x65, 0x70]);
    }

    #[test]
    fn strings_pick_printable_or_utf8() {
        assert_eq!(directory_string("os:admin")[0], tag::PRINTABLE_STRING);
        assert_eq!(directory_string("a_b")[0], tag::UTF8_STRING);
        assert_eq!(directory_string("é")[0], tag::UTF8_STRING);
    }

    #[test]
    fn times_switch_to_generalized_after_2049() {
        let t = time::macros::datetime!(2023-10-12 10:46:09 UTC);
        assert_eq!(time(t), tlv(tag::UTC_TIME, b"231012104609Z"));
        let t = time::macros::datetime!(2050-01-01 00:00:00 UTC);
        assert_eq!(time(t), tlv(tag::GENERALIZED_TIME, b"20500101000000Z"));
    }

    #[test]
    fn names_group_organizations_in_one_rdn() {
        let n = name(&["os:reader".into(), "os:admin".into()], None);
        let (_, parsed) = x509_parser::x509::X509Name::from_der(&n).unwrap();
        assert_eq!(parsed.iter_rdn().count(), 1);
        assert_eq!(parsed.iter_organization().count(), 2);
        assert_eq!(name(&[], None), vec![0x30, 0x00]);
    }
}
