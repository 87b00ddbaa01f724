#!/usr/bin/env python3
"""Talks to a talos-rs apid with the Python stubs generated from Talos's own protos.

usage: talos_api_client.py HOST PORT CA_PEM CRT_PEM KEY_PEM [--dmesg]

Uses the PyPI package `talos-linux-api-v1-6-0` (betterproto + grpclib) over mutual TLS and calls
Version, Hostname, Memory, ServiceList, Logs (and Dmesg with --dmesg). Prints one JSON line per
call and exits 1 on the first failure. Loopback only: HOST must be a 127.0.0.0/8 address.
"""
import asyncio
import ipaddress
import json
import os
import ssl
import sys
import tempfile

from grpclib.client import Channel
from talos_linux_api.v1_6_0 import machine
import betterproto.lib.google.protobuf as pb


def tls_context(ca, crt, key):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.set_alpn_protocols(["h2"])
    # Talos labels Ed25519 keys "ED25519 PRIVATE KEY"; the DER inside is PKCS#8, which OpenSSL
    # reads under the standard label.
    with open(key) as f:
        text = f.read().replace("ED25519 PRIVATE KEY", "PRIVATE KEY")
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as tmp:
        tmp.write(text)
        key_path = tmp.name
    try:
        ctx.load_cert_chain(crt, key_path)
    finally:
        os.unlink(key_path)
    return ctx


async def collect(stream, limit):
    out = []
    async for msg in stream:
        out.append(msg)
        if len(out) >= limit:
            break
    return out


async def main():
    host, port, ca, crt, key = sys.argv[1:6]
    want_dmesg = "--dmesg" in sys.argv[6:]
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit("refusing a non-loopback host")
    channel = Channel(host, int(port), ssl=tls_context(ca, crt, key))
    stub = machine.MachineServiceStub(channel, timeout=20)
    try:
        v = await stub.version(pb.Empty())
        tag = v.messages[0].version.tag
        print(json.dumps({"call": "Version", "tag": tag, "os": v.messages[0].version.os}))
        assert tag, "empty version tag"

        h = await stub.hostname(pb.Empty())
        print(json.dumps({"call": "Hostname", "hostname": h.messages[0].hostname}))
        assert h.messages[0].hostname

        m = await stub.memory(pb.Empty())
        total = m.messages[0].meminfo.memtotal
        print(json.dumps({"call": "Memory", "memtotal": total}))
        assert total > 0

        s = await stub.service_list(pb.Empty())
        ids = [svc.id for svc in s.messages[0].services]
        print(json.dumps({"call": "ServiceList", "services": ids}))
        assert "machined" in ids

        logs = await collect(stub.logs(machine.LogsRequest(id="machined", tail_lines=5)), 5)
        text = b"".join(d.bytes for d in logs).decode(errors="replace")
        print(json.dumps({"call": "Logs", "chunks": len(logs), "bytes": len(text)}))
        assert logs and text

        if want_dmesg:
            d = await collect(stub.dmesg(machine.DmesgRequest(follow=False, tail=False)), 1000)
            size = sum(len(x.bytes) for x in d)
            print(json.dumps({"call": "Dmesg", "chunks": len(d), "bytes": size}))
            assert size > 0
    finally:
        channel.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as e:  # report, do not hide: any failure fails the test
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
