//! Adding per-node metadata to replies without decoding them.
//!
//! Every Talos reply element carries `common.Metadata metadata = 1`: unary replies are
//! `XResponse { repeated X messages = 1 }`, streamed messages are `X` themselves. When apid
//! merges the replies of several nodes it tags each element with the node it came from by
//! appending an encoded `metadata = 1` field to the element. Protobuf merges repeated
//! occurrences of a message field, so the appended hostname joins whatever metadata the node set
//! (an error, say) and the element still decodes as its own type.

use bytes::{BufMut as _, Bytes, BytesMut};
use prost::encoding::{decode_varint, encode_varint, encoded_len_varint};
use prost::Message as _;

use crate::api::common;
use crate::api::google::rpc;

/// Field number of `messages` in every `XResponse` and of `metadata` in every element.
const FIELD_ONE: u64 = 1;
/// Wire type of length-delimited fields (messages, strings, bytes).
const WIRE_LEN: u64 = 2;
/// The key byte of field 1, length-delimited.
const KEY_FIELD_ONE_LEN: u64 = (FIELD_ONE << 3) | WIRE_LEN;

/// A reply that is not a well-formed protobuf message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpliceError {
    /// The bytes end inside a field, or use a wire type protobuf does not define.
    #[error("unexpected message format: {0}")]
    Malformed(&'static str),
}

/// `field 1 = <payload>` as bytes: key, length, payload.
fn field_one(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 1 + encoded_len_varint(payload.len() as u64));
    encode_varint(KEY_FIELD_ONE_LEN, &mut out);
    encode_varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// The encoded `metadata = 1` field naming `hostname` (that is, `common.Empty{metadata:
/// {hostname}}`), ready to append to an element.
pub fn hostname_field(hostname: &str) -> Vec<u8> {
    let metadata = common::Metadata {
        hostname: hostname.to_owned(),
        ..Default::default()
    };
    field_one(&metadata.encode_to_vec())
}

/// Appends `hostname` metadata to one streamed message (`common.Data`, `machine.Event`, ...).
pub fn tag_stream_message(message: &[u8], hostname: &str) -> Bytes {
    let extra = hostname_field(hostname);
    let mut out = BytesMut::with_capacity(message.len() + extra.len());
    out.put_slice(message);
    out.put_slice(&extra);
    out.freeze()
}

/// Appends `hostname` metadata to every element of a unary `XResponse` (every occurrence of
/// field 1). Other top-level fields are copied unchanged.
pub fn tag_unary_reply(reply: &[u8], hostname: &str) -> Result<Bytes, SpliceError> {
    let extra = hostname_field(hostname);
    let mut out = BytesMut::with_capacity(reply.len() + 8 * extra.len());
    let mut rest = reply;
    while !rest.is_empty() {
        let field_start = rest;
        let key = decode_varint(&mut rest).map_err(|_| SpliceError::Malformed("bad field key"))?;
        let wire = key & 7;
        match wire {
            // varint
            0 => {
                decode_varint(&mut rest).map_err(|_| SpliceError::Malformed("bad varint"))?;
            }
            // 64-bit
            1 => rest = skip(rest, 8)?,
            // length-delimited
            2 => {
                let len = decode_varint(&mut rest)
                    .map_err(|_| SpliceError::Malformed("bad field length"))?;
                let len = usize::try_from(len)
                    .map_err(|_| SpliceError::Malformed("field length overflows"))?;
                if rest.len() < len {
                    return Err(SpliceError::Malformed("field runs past the end"));
                }
                if key == KEY_FIELD_ONE_LEN {
                    let (element, tail) = rest.split_at(len);
                    let mut key_buf = Vec::with_capacity(12);
                    encode_varint(KEY_FIELD_ONE_LEN, &mut key_buf);
                    encode_varint((len + extra.len()) as u64, &mut key_buf);
                    out.put_slice(&key_buf);
                    out.put_slice(element);
                    out.put_slice(&extra);
                    rest = tail;
                    continue;
                }
                rest = &rest[len..];
            }
            // 32-bit
            5 => rest = skip(rest, 4)?,
            _ => return Err(SpliceError::Malformed("unsupported wire type")),
        }
        let consumed = field_start.len() - rest.len();
        out.put_slice(&field_start[..consumed]);
    }
    Ok(out.freeze())
}

fn skip(rest: &[u8], n: usize) -> Result<&[u8], SpliceError> {
    rest.get(n..)
        .ok_or(SpliceError::Malformed("field runs past the end"))
}

/// The text Talos puts in `metadata.error` for a failed node: a Go gRPC status error string.
pub fn error_text(status: &tonic::Status) -> String {
    format!(
        "rpc error: code = {:?} desc = {}",
        status.code(),
        status.message()
    )
}

/// `common.Metadata` describing a failed node.
pub fn error_metadata(hostname: &str, status: &tonic::Status) -> common::Metadata {
    // Keep the details the node sent, if any (they travel as an encoded google.rpc.Status).
    let details = if status.details().is_empty() {
        Vec::new()
    } else {
        rpc::Status::decode(status.details())
            .map(|s| s.details)
            .unwrap_or_default()
    };
    common::Metadata {
        hostname: hostname.to_owned(),
        error: error_text(status),
        status: Some(rpc::Status {
            code: status.code() as i32,
            message: status.message().to_owned(),
            details,
        }),
    }
}

/// The element a failed node contributes to a merged unary reply:
/// `EmptyResponse{messages: [{metadata: {hostname, error, status}}]}`. Any `XResponse` decodes it
/// as one element carrying only metadata.
pub fn error_unary_reply(hostname: &str, status: &tonic::Status) -> Bytes {
    let reply = common::EmptyResponse {
        messages: vec![common::Empty {
            metadata: Some(error_metadata(hostname, status)),
        }],
    };
    Bytes::from(reply.encode_to_vec())
}

/// The message a failed node contributes to a merged stream: `Empty{metadata: {hostname, error,
/// status}}`, which decodes as any streamed message type with only its metadata set.
pub fn error_stream_message(hostname: &str, status: &tonic::Status) -> Bytes {
    let message = common::Empty {
        metadata: Some(error_metadata(hostname, status)),
    };
    Bytes::from(message.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::machine;

    fn version(tag: &str, metadata: Option<common::Metadata>) -> machine::Version {
        machine::Version {
            metadata,
            version: Some(machine::VersionInfo {
                tag: tag.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn unary_every_element_gets_the_hostname() {
        let reply = machine::VersionResponse {
            messages: vec![version("v1", None), version("v2", None)],
        };
        let tagged = tag_unary_reply(&reply.encode_to_vec(), "10.5.0.2").unwrap();
        let back = machine::VersionResponse::decode(tagged).unwrap();
        assert_eq!(back.messages.len(), 2);
        for (m, tag) in back.messages.iter().zip(["v1", "v2"]) {
            assert_eq!(m.metadata.as_ref().unwrap().hostname, "10.5.0.2");
            assert_eq!(m.version.as_ref().unwrap().tag, tag);
        }
    }

    #[test]
    fn unary_merges_with_existing_metadata() {
        let md = common::Metadata {
            hostname: "old".into(),
            error: "node said no".into(),
            status: None,
        };
        let reply = machine::VersionResponse {
            messages: vec![version("v1", Some(md))],
        };
        let tagged = tag_unary_reply(&reply.encode_to_vec(), "n1").unwrap();
        let back = machine::VersionResponse::decode(tagged).unwrap();
        let md = back.messages[0].metadata.as_ref().unwrap();
        assert_eq!(md.hostname, "n1");
        assert_eq!(md.error, "node said no");
    }

    #[test]
    fn unary_empty_reply_and_big_elements() {
        assert!(tag_unary_reply(&[], "n").unwrap().is_empty());
        // An element longer than 127 bytes has a two-byte length; the new length may need more.
        let big = machine::VersionResponse {
            messages: vec![version(&"x".repeat(200), None)],
        };
        let tagged = tag_unary_reply(&big.encode_to_vec(), &"h".repeat(300)).unwrap();
        let back = machine::VersionResponse::decode(tagged).unwrap();
        assert_eq!(
            back.messages[0].metadata.as_ref().unwrap().hostname.len(),
            300
        );
        assert_eq!(back.messages[0].version.as_ref().unwrap().tag.len(), 200);
    }

    #[test]
    fn unary_other_fields_are_kept() {
        // field 2 varint, field 3 fixed64, field 4 fixed32, field 5 bytes, then field 1.
        let mut raw = vec![0x10, 0x96, 0x01, 0x19];
        raw.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        raw.push(0x25);
        raw.extend_from_slice(&[1, 2, 3, 4]);
        raw.extend_from_slice(&[0x2a, 2, b'h', b'i']);
        raw.extend_from_slice(&[0x0a, 0]);
        let tagged = tag_unary_reply(&raw, "n").unwrap();
        assert_eq!(&tagged[..raw.len() - 2], &raw[..raw.len() - 2]);
        let extra = hostname_field("n");
        assert_eq!(tagged[raw.len() - 2], 0x0a);
        assert_eq!(tagged[raw.len() - 1] as usize, extra.len());
        assert_eq!(&tagged[raw.len()..], &extra[..]);
    }

    #[test]
    fn unary_malformed() {
        assert!(tag_unary_reply(&[0x0a, 5, 1], "n").is_err());
        assert!(tag_unary_reply(&[0x0b], "n").is_err());
        assert!(tag_unary_reply(&[0x09, 1, 2], "n").is_err());
        assert!(tag_unary_reply(&[0x80], "n").is_err());
        let e = tag_unary_reply(&[0x0a, 5], "n").unwrap_err();
        assert!(e.to_string().starts_with("unexpected message format"));
    }

    #[test]
    fn stream_message_gets_the_hostname() {
        let data = common::Data {
            metadata: None,
            bytes: b"line\n".to_vec(),
        };
        let tagged = tag_stream_message(&data.encode_to_vec(), "n2");
        let back = common::Data::decode(tagged).unwrap();
        assert_eq!(back.metadata.unwrap().hostname, "n2");
        assert_eq!(back.bytes, b"line\n");
    }

    #[test]
    fn error_entries_decode_as_any_reply() {
        let status = tonic::Status::unavailable("connection refused");
        let reply = error_unary_reply("10.5.0.3", &status);
        let back = machine::VersionResponse::decode(reply).unwrap();
        assert_eq!(back.messages.len(), 1);
        let m = &back.messages[0];
        assert!(m.version.is_none());
        let md = m.metadata.as_ref().unwrap();
        assert_eq!(md.hostname, "10.5.0.3");
        assert_eq!(
            md.error,
            "rpc error: code = Unavailable desc = connection refused"
        );
        let st = md.status.as_ref().unwrap();
        assert_eq!(st.code, 14);
        assert_eq!(st.message, "connection refused");

        let msg = error_stream_message("n", &tonic::Status::deadline_exceeded("slow"));
        let back = common::Data::decode(msg).unwrap();
        let md = back.metadata.unwrap();
        assert_eq!(md.status.unwrap().code, 4);
        assert_eq!(md.error, "rpc error: code = DeadlineExceeded desc = slow");
    }

    #[test]
    fn merged_reply_is_a_concatenation() {
        let a = tag_unary_reply(
            &machine::VersionResponse {
                messages: vec![version("a", None)],
            }
            .encode_to_vec(),
            "a",
        )
        .unwrap();
        let b = error_unary_reply("b", &tonic::Status::internal("x"));
        let mut all = a.to_vec();
        all.extend_from_slice(&b);
        let back = machine::VersionResponse::decode(&all[..]).unwrap();
        let hosts: Vec<_> = back
            .messages
            .iter()
            .map(|m| m.metadata.as_ref().unwrap().hostname.as_str())
            .collect();
        assert_eq!(hosts, ["a", "b"]);
    }
}
