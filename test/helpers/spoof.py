"""Test-only packet tool for the bridge isolation tests, run inside a container's network namespace
(`nsenter --net=/proc/PID/ns/net python3 spoof.py ...`): what a process holding the default NET_RAW
capability can do there. Arguments only, no shell.

  arp    IFACE ETHER_SRC SENDER_MAC SENDER_IP           gratuitous ARP reply to broadcast, 3 times over 1.2 s
  udp    IFACE ETHER_SRC ETHER_DST SRC_IP DST_IP PORT TEXT [SPORT]   one raw IPv4/UDP frame, any source (port 40000)
  udp6   IFACE ETHER_SRC ETHER_DST SRC_IP DST_IP PORT TEXT [SPORT]   one raw IPv6/UDP frame, any source (port 40000)
  ra     IFACE ETHER_SRC TEXT                           router advertisement from ETHER_SRC's link-local address to all nodes, TEXT in an option
  na     IFACE ETHER_SRC TARGET_MAC TARGET_IP           unsolicited neighbour advertisement (override) to all nodes, 3 times over 1.2 s
  lladdr MAC                                            prints the link-local IPv6 address MAC gives (modified EUI-64)
  send   DST_IP PORT TEXT                               one ordinary UDP datagram (the kernel picks the source)
  listen IP PORT SECONDS                                prints "listening", then "SRC_IP TEXT" per datagram (IPv4 or IPv6)
  sniff  IFACE MARKER SECONDS                           prints "listening", then "ETHERTYPE WORD" per frame IFACE receives with a WORD ([A-Za-z0-9-]) starting with MARKER
"""
import re
import socket
import struct
import sys
import time


def mac(text):
    return bytes.fromhex(text.replace(':', ''))


def checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def raw(iface, frame):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.send(frame)


def thrice(iface, frame):
    for i in range(3):
        raw(iface, frame)
        if i < 2:
            time.sleep(0.6)  # past the neighbour table's locktime (1 s) by the third


def arp(iface, ether_src, sender_mac, sender_ip):
    # op 2 (reply), sender = target = the claimed address: what arpspoof and gratuitous ARP send.
    body = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 2, mac(sender_mac), socket.inet_aton(sender_ip),
                       b'\xff' * 6, socket.inet_aton(sender_ip))
    thrice(iface, b'\xff' * 6 + mac(ether_src) + b'\x08\x06' + body)


def udp(iface, ether_src, ether_dst, src_ip, dst_ip, port, text, sport='40000'):
    payload = text.encode()
    src, dst = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
    header = struct.pack('!HHHH', int(sport), int(port), 8 + len(payload), 0)
    pseudo = src + dst + struct.pack('!BBH', 0, 17, len(header) + len(payload))
    header = header[:6] + struct.pack('!H', checksum(pseudo + header + payload) or 0xFFFF)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(header) + len(payload), 1, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
    raw(iface, mac(ether_dst) + mac(ether_src) + b'\x08\x00' + ip + header + payload)


def ipv6_frame(ether_src, ether_dst, src_ip, dst_ip, next_header, body_without_checksum, checksum_at, hop_limit=64):
    src, dst = socket.inet_pton(socket.AF_INET6, src_ip), socket.inet_pton(socket.AF_INET6, dst_ip)
    pseudo = src + dst + struct.pack('!IxxxB', len(body_without_checksum), next_header)
    c = checksum(pseudo + body_without_checksum) or 0xFFFF
    body = body_without_checksum[:checksum_at] + struct.pack('!H', c) + body_without_checksum[checksum_at + 2:]
    header = struct.pack('!IHBB16s16s', 6 << 28, len(body), next_header, hop_limit, src, dst)
    return mac(ether_dst) + mac(ether_src) + b'\x86\xdd' + header + body


def udp6(iface, ether_src, ether_dst, src_ip, dst_ip, port, text, sport='40000'):
    payload = text.encode()
    body = struct.pack('!HHHH', int(sport), int(port), 8 + len(payload), 0) + payload
    raw(iface, ipv6_frame(ether_src, ether_dst, src_ip, dst_ip, 17, body, 6))


def link_local(ether_src):
    return 'fe80::' + ':'.join('%x' % w for w in struct.unpack('!4H', bytes([mac(ether_src)[0] ^ 2]) + mac(ether_src)[1:3] + b'\xff\xfe' + mac(ether_src)[3:]))


def na(iface, ether_src, target_mac, target_ip):
    # Type 136, flags override (0x20000000), target, option 2 (target link-layer address).
    body = struct.pack('!BBHI16sBB6s', 136, 0, 0, 0x20000000, socket.inet_pton(socket.AF_INET6, target_ip), 2, 1, mac(target_mac))
    thrice(iface, ipv6_frame(ether_src, '33:33:00:00:00:01', link_local(ether_src), 'ff02::1', 58, body, 2, hop_limit=255))


def ra(iface, ether_src, text):
    # Type 134: hop limit 64, router lifetime 1800 s, option 1 (source link-layer address), then TEXT in
    # option 253 (RFC 4727, experiments), padded to 8-octet units.
    marker = text.encode()
    marker += b'\0' * (-(len(marker) + 2) % 8)
    body = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0) + struct.pack('!BB6s', 1, 1, mac(ether_src))
    body += struct.pack('!BB', 253, (len(marker) + 2) // 8) + marker
    raw(iface, ipv6_frame(ether_src, '33:33:00:00:00:01', link_local(ether_src), 'ff02::1', 58, body, 2, hop_limit=255))


def lladdr(ether):
    print(link_local(ether))


def send(dst_ip, port, text):
    family = socket.AF_INET6 if ':' in dst_ip else socket.AF_INET
    socket.socket(family, socket.SOCK_DGRAM).sendto(text.encode(), (dst_ip, int(port)))


def received(s, seconds, size):
    """Prints "listening", then yields (data, address) per packet until SECONDS have passed."""
    print('listening', flush=True)
    deadline = time.monotonic() + float(seconds)
    while (left := deadline - time.monotonic()) > 0:
        s.settimeout(left)
        try:
            yield s.recvfrom(size)
        except socket.timeout:
            return


def listen(ip, port, seconds):
    s = socket.socket(socket.AF_INET6 if ':' in ip else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, int(port)))
    for data, address in received(s, seconds, 2048):
        print(address[0], data.decode(errors='replace'), flush=True)


def sniff(iface, marker, seconds):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
    s.bind((iface, 0))
    for frame, address in received(s, seconds, 65535):
        at = frame.find(marker.encode())
        if address[2] != socket.PACKET_OUTGOING and at >= 0:
            word = re.match(rb'[A-Za-z0-9-]*', frame[at:]).group().decode()
            print('%04x' % struct.unpack('!H', frame[12:14])[0], word, flush=True)


if __name__ == '__main__':
    {'arp': arp, 'udp': udp, 'udp6': udp6, 'na': na, 'ra': ra, 'lladdr': lladdr, 'send': send, 'listen': listen, 'sniff': sniff}[sys.argv[1]](*sys.argv[2:])
