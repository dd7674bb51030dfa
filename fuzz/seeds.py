#!/usr/bin/env python3
"""Seeds for the fuzz targets, written into DIR/<target>/ (scripts/fuzz.sh runs it before each
run; files are named by their content, so running it again adds nothing twice).

- wire_classify, pipeline: frames of the pipeline's fixtures' topology, built here with their
  checksums (IPv4 and IPv6; TCP SYN, ACK with data, UDP, ICMP echo, ARP request, an IPv6
  neighbour solicitation, a VLAN-tagged frame, a fragment, an ICMP error quoting UDP); the
  pipeline's seeds are sequences of them in its input format (port byte, u16 length, frame).
- conf_toml: conf/samples/*.toml and the bad-config corpus conf/tests/bad/*.toml.
- mailbox_request: every request and response of the mailbox's golden files
  (mailbox/tests/golden/protocol-v*.hex).

Usage: fuzz/seeds.py DIR
"""
import hashlib
import ipaddress
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLIENT_MAC, P0 = bytes.fromhex("020000000101"), bytes.fromhex("020000000010")
RS_MAC, P1 = bytes.fromhex("020000000102"), bytes.fromhex("020000000011")


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, frag=0x4000, ttl=64):
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, ttl, proto, 0, s, d)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h, s, d


def l4(proto, s, d, seg, at, pseudo_len=None):
    length = len(seg) if pseudo_len is None else pseudo_len
    if proto == 1:
        # ICMP (IPv4) has no pseudo-header.
        return seg[:at] + struct.pack("!H", csum(seg)) + seg[at + 2:]
    if len(s) == 4:
        pseudo = s + d + struct.pack("!BBH", 0, proto, length)
    else:
        pseudo = s + d + struct.pack("!IxxxB", length, proto)
    c = csum(pseudo + seg)
    if proto == 17 and c == 0:
        c = 0xFFFF
    return seg[:at] + struct.pack("!H", c) + seg[at + 2:]


def tcp(sport, dport, flags, data=b"", seq=1000, ack=0, options=b""):
    off = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + options + data


def udp(sport, dport, data):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def eth(dst, src, ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload


def v4_frame(src, dst, proto, seg, at, macs=(P0, CLIENT_MAC), frag=0x4000):
    h, s, d = ipv4(src, dst, proto, seg, frag)
    if at is not None:
        seg = l4(proto, s, d, seg, at)
    return eth(macs[0], macs[1], 0x0800, h + seg)


def v6_frame(src, dst, nh, seg, at, macs=(P0, CLIENT_MAC)):
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    seg = l4(nh, s, d, seg, at)
    h = struct.pack("!IHBB16s16s", 0x60000000, len(seg), nh, 64, s, d)
    return eth(macs[0], macs[1], 0x86DD, h + seg)


def frames():
    c, vip, lip, rs = "198.18.0.1", "198.18.0.100", "198.18.1.254", "198.18.1.2"
    mss = bytes.fromhex("020405b4") + bytes.fromhex("0103030701010402")
    out = {
        "syn": v4_frame(c, vip, 6, tcp(40000, 80, 0x02, options=mss), 16),
        "syn_proxy_v1": v4_frame(c, vip, 6, tcp(40001, 81, 0x02, options=mss), 16),
        "ack_data": v4_frame(c, vip, 6, tcp(40000, 80, 0x18, b"GET / HTTP/1.0\r\n\r\n", ack=1), 16),
        "udp": v4_frame(c, vip, 17, udp(40000, 53, b"question"), 6),
        "udp_tunnel": v4_frame(c, vip, 17, udp(40000, 84, b"tunnelled"), 6),
        "syn_dr": v4_frame(c, vip, 6, tcp(40002, 82, 0x02), 16),
        "syn_nat": v4_frame(c, vip, 6, tcp(40003, 83, 0x02), 16),
        "reply": v4_frame(rs, lip, 6, tcp(8080, 1025, 0x12, ack=1001), 16, (P1, RS_MAC)),
        "udp_reply": v4_frame(rs, lip, 17, udp(5353, 1025, b"answer"), 6, (P1, RS_MAC)),
        "echo": v4_frame(c, vip, 1, struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"ping", 2),
        "fragment": v4_frame(c, vip, 17, udp(40000, 53, b"x" * 32), None, frag=0x2000),
        "arp": eth(b"\xff" * 6, CLIENT_MAC, 0x0806, struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, CLIENT_MAC,
                   ipaddress.IPv4Address(c).packed, b"\0" * 6, ipaddress.IPv4Address(vip).packed)),
        "syn6": v6_frame("2001:db8::1", "2001:db8::100", 6, tcp(40000, 80, 0x02, options=mss), 16),
        "syn64": v6_frame("2001:db8::1", "2001:db8::100", 6, tcp(40001, 443, 0x02, options=mss), 16),
        "ns": v6_frame("2001:db8::1", "ff02::1:ff00:100", 58,
                       struct.pack("!BBHI16s", 135, 0, 0, 0, ipaddress.IPv6Address("2001:db8::100").packed), 2),
    }
    vlan = out["udp"][:12] + struct.pack("!HH", 0x8100, 7) + out["udp"][12:]
    out["vlan"] = vlan
    quoted = ipv4(lip, rs, 17, udp(1025, 5353, b"question"))[0] + udp(1025, 5353, b"question")[:8]
    err = struct.pack("!BBHI", 3, 3, 0, 0) + quoted
    out["icmp_error"] = v4_frame(rs, lip, 1, err, 2, (P1, RS_MAC))
    return out


def put(d, data):
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main():
    out = pathlib.Path(sys.argv[1])
    fs = frames()
    for f in fs.values():
        put(out / "wire_classify", f)
    seq = lambda *names: b"".join(bytes([0 if not n.endswith("reply") else 1]) + struct.pack("<H", len(fs[n])) + fs[n]
                                  for n in names)
    for names in (("syn", "ack_data", "reply"), ("udp", "udp_reply", "udp"), ("syn_proxy_v1", "ack_data"),
                  ("syn6",), ("syn64",), ("syn_dr", "syn_nat", "udp_tunnel"), ("echo", "arp", "ns", "vlan"),
                  ("fragment", "icmp_error"), ("udp", "icmp_error")):
        put(out / "pipeline", seq(*names))
    for p in sorted((ROOT / "conf/samples").glob("*.toml")) + sorted((ROOT / "conf/tests/bad").glob("*.toml")):
        put(out / "conf_toml", p.read_bytes())
    for p in sorted((ROOT / "mailbox/tests/golden").glob("protocol-v*.hex")):
        entry = []
        for line in p.read_text().splitlines() + ["#"]:
            if line.startswith("#"):
                if entry:
                    put(out / "mailbox_request", bytes.fromhex("".join(entry)))
                entry = []
            else:
                entry.append(line.strip())


main()
