#!/usr/bin/env bash
# jepsen/net.sh -- the harness's hosts: one network namespace per node on a bridge.
#
#   jepsen/net.sh up N        bridge kvdj0 (10.77.0.1/24, the host side, where clients run)
#                             and namespaces kvdj1..N, node i at 10.77.0.(10+i)
#   jepsen/net.sh down        remove every namespace kvdj*, the bridge and our FORWARD rule
#   jepsen/net.sh cut I J     drop all traffic between nodes I and J (both directions)
#   jepsen/net.sh heal        flush the partition rules in every namespace
#   jepsen/net.sh check       exit 0 when namespaces + iptables work here (else 77)
#
# Partitions are iptables DROP rules inside the nodes' namespaces (INPUT and OUTPUT), so they
# are silent (timeouts) and vanish with the namespace. The only state outside namespaces is
# the bridge, its veth ends and one FORWARD ACCEPT rule for bridged traffic (needed when
# br_netfilter sends bridged frames through a FORWARD chain whose policy is DROP, as Docker
# sets it); `down` removes all three and is safe to run twice.
set -uo pipefail
BR=kvdj0
NET=10.77.0
FWD=(FORWARD -i "$BR" -o "$BR" -m comment --comment kvd-jepsen -j ACCEPT)

ip_of() { echo "$NET.$((10 + $1))"; }

down() {
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^kvdj[0-9]+$'); do
        ip netns delete "$ns" 2>/dev/null
    done
    for v in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
               grep -E '^vkvdj[0-9]+$'); do
        ip link delete "$v" 2>/dev/null
    done
    ip link delete "$BR" 2>/dev/null
    while iptables -C "${FWD[@]}" 2>/dev/null; do iptables -D "${FWD[@]}"; done
    return 0
}

up() {
    local n=$1 i
    down
    ip link add "$BR" type bridge || return 1
    ip addr add "$NET.1/24" dev "$BR" || return 1
    ip link set "$BR" up || return 1
    iptables -I "${FWD[@]}" 2>/dev/null || true
    for ((i = 1; i <= n; i++)); do
        ip netns add "kvdj$i" || return 1
        ip link add "vkvdj$i" type veth peer name eth0 netns "kvdj$i" || return 1
        ip link set "vkvdj$i" master "$BR" || return 1
        ip link set "vkvdj$i" up || return 1
        ip -n "kvdj$i" addr add "$(ip_of "$i")/24" dev eth0 || return 1
        ip -n "kvdj$i" link set eth0 up || return 1
        ip -n "kvdj$i" link set lo up || return 1
    done
    return 0
}

cut() {
    local a=$1 b=$2
    ip netns exec "kvdj$a" iptables -A INPUT -s "$(ip_of "$b")" -j DROP
    ip netns exec "kvdj$a" iptables -A OUTPUT -d "$(ip_of "$b")" -j DROP
    ip netns exec "kvdj$b" iptables -A INPUT -s "$(ip_of "$a")" -j DROP
    ip netns exec "kvdj$b" iptables -A OUTPUT -d "$(ip_of "$a")" -j DROP
}

heal() {
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^kvdj[0-9]+$'); do
        ip netns exec "$ns" iptables -F INPUT
        ip netns exec "$ns" iptables -F OUTPUT
    done
}

check() {
    [[ $(id -u) -eq 0 ]] || { echo "not root"; return 77; }
    command -v ip >/dev/null && command -v iptables >/dev/null || { echo "no ip/iptables"; return 77; }
    local ns=kvdjcheck$$ ok=0
    if ip netns add "$ns" 2>/dev/null; then
        if ip netns exec "$ns" iptables -A INPUT -s 10.77.0.250 -j DROP 2>/dev/null &&
           ip link add kvdjchk$$ type bridge 2>/dev/null; then
            ok=1
        fi
        ip link delete kvdjchk$$ 2>/dev/null
        ip netns delete "$ns"
    fi
    ((ok)) || { echo "network namespaces, bridges or iptables do not work here"; return 77; }
    return 0
}

case ${1:-} in
up) [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "usage: $0 up N" >&2; exit 2; }; up "$2" || { down; exit 1; } ;;
down) down ;;
cut) cut "$2" "$3" ;;
heal) heal ;;
check) check; exit $? ;;
*) echo "usage: $0 up N | down | cut I J | heal | check" >&2; exit 2 ;;
esac
