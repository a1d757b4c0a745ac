#!/usr/bin/env bash
# NAT lab (issue 12, point 6): a helper on a "public" segment and two peers, each behind its own
# NAT router, all in Linux network namespaces this script creates and removes again.
#
#   public 198.18.0.0/24 (bridge in ns "pub")   helper 198.18.0.1   (goop relay --private-addresses)
#     ├─ nat1 198.18.0.2 ── 10.1.0.0/24 ── peer A 10.1.0.2          MASQUERADE
#     └─ nat2 198.18.0.3 ── 10.2.0.0/24 ── peer B 10.2.0.2          MASQUERADE (--random-fully with --symmetric)
#
# Usage (as root): lab/nat.sh [--symmetric] [--tries N (20; 3 with --symmetric)] [--goop PATH] [--keep-logs]
# Needs: ip (iproute2), iptables, curl, jq, and a built goop (default: $CARGO_TARGET_DIR or
# target/, debug build).
set -euo pipefail

SYMMETRIC=0
TRIES=""
KEEP=0
GOOP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --symmetric) SYMMETRIC=1 ;;
        --tries) TRIES="$2"; shift ;;
        --goop) GOOP="$2"; shift ;;
        --keep-logs) KEEP=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "nat.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

# Through a symmetric NAT every try waits out DCUtR's three attempts (about 30 s): fewer by default.
if [ -z "$TRIES" ]; then if [ "$SYMMETRIC" = 1 ]; then TRIES=3; else TRIES=20; fi; fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$GOOP" ]; then GOOP="${CARGO_TARGET_DIR:-$ROOT/target}/debug/goop"; fi
GOOP="$(realpath "$GOOP")"
[ "$(id -u)" = 0 ] || { echo "nat.sh: run as root (network namespaces, iptables)" >&2; exit 2; }
for tool in ip iptables curl jq; do
    command -v "$tool" >/dev/null || { echo "nat.sh: $tool is needed" >&2; exit 2; }
done
[ -x "$GOOP" ] || { echo "nat.sh: no goop binary at $GOOP (cargo build -p goop)" >&2; exit 2; }

export RUST_LOG="${RUST_LOG:-info,libp2p_dcutr=debug,libp2p_relay=debug,libp2p_autonat=debug}"
TAG="gl$$"                        # namespace names: unique to this run
NS_PUB="$TAG-pub" NS_N1="$TAG-nat1" NS_N2="$TAG-nat2" NS_A="$TAG-a" NS_B="$TAG-b"
WORK="$(mktemp -d /tmp/goop-natlab.XXXXXX)"
MADE_NS=()

say() { echo "lab: $*"; }

cleanup() {
    local status=$?
    set +e
    # Only this script's own background jobs still running (the helper and the peers).
    local jobs_left; jobs_left=$(jobs -p)
    for pid in $jobs_left; do kill "$pid" 2>/dev/null; done
    for pid in $jobs_left; do wait "$pid" 2>/dev/null; done
    for ns in "${MADE_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    if [ "$status" != 0 ]; then
        for log in "$WORK"/*.log; do
            [ -f "$log" ] || continue
            echo "---- last lines of $(basename "$log")" >&2
            tail -n 25 "$log" >&2
        done
    fi
    if [ "$KEEP" = 1 ]; then say "logs kept in $WORK"; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "lab: FAIL: $*" >&2; exit 1; }

# ---- the network -------------------------------------------------------------------------

mkns() { ip netns add "$1"; MADE_NS+=("$1"); ip -n "$1" link set lo up; }

mkns "$NS_PUB"; mkns "$NS_N1"; mkns "$NS_N2"; mkns "$NS_A"; mkns "$NS_B"
# Every link is created inside the lab's namespaces: the host's interfaces are never touched.
ip -n "$NS_PUB" link add br0 type bridge
ip -n "$NS_PUB" addr add 198.18.0.1/24 dev br0
ip -n "$NS_PUB" link set br0 up

# router NS (public side pub0 = PUBIP on the bridge; private side priv0 = 10.N.0.1) and its peer
# PEERNS (eth0 = 10.N.0.2, default route through the router).
router() {
    local ns=$1 n=$2 pubip=$3 peerns=$4 random=$5
    ip -n "$NS_PUB" link add "port$n" type veth peer name pub0 netns "$ns"
    ip -n "$NS_PUB" link set "port$n" master br0 up
    ip -n "$ns" addr add "$pubip/24" dev pub0
    ip -n "$ns" link set pub0 up
    ip -n "$ns" link add priv0 type veth peer name eth0 netns "$peerns"
    ip -n "$ns" addr add "10.$n.0.1/24" dev priv0
    ip -n "$ns" link set priv0 up
    ip -n "$peerns" addr add "10.$n.0.2/24" dev eth0
    ip -n "$peerns" link set eth0 up
    ip -n "$peerns" route add default via "10.$n.0.1"
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    local ipt=(ip netns exec "$ns" iptables)
    # Outbound: source NAT to the router's public address. Linux keeps the source port when it
    # can (an endpoint-independent mapping); --random-fully picks a new port per connection
    # (a symmetric NAT).
    if [ "$random" = 1 ]; then
        "${ipt[@]}" -t nat -A POSTROUTING -o pub0 -j MASQUERADE --random-fully
    else
        "${ipt[@]}" -t nat -A POSTROUTING -o pub0 -j MASQUERADE
    fi
    # Inbound: only answers to what went out (a home router): nothing unsolicited reaches the
    # peer or the router itself, and it is dropped silently, not refused.
    "${ipt[@]}" -A FORWARD -i pub0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    "${ipt[@]}" -A FORWARD -i pub0 -j DROP
    "${ipt[@]}" -A INPUT -i pub0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    "${ipt[@]}" -A INPUT -i pub0 -j DROP
}
router "$NS_N1" 1 198.18.0.2 "$NS_A" 0
router "$NS_N2" 2 198.18.0.3 "$NS_B" "$SYMMETRIC"
if [ "$SYMMETRIC" = 1 ]; then nat2="symmetric (MASQUERADE --random-fully)"; else nat2="endpoint-independent"; fi
say "network up: helper 198.18.0.1; A 10.1.0.2 behind nat1 198.18.0.2 (endpoint-independent); B 10.2.0.2 behind nat2 198.18.0.3 ($nat2)"

# ---- helpers for the peers ---------------------------------------------------------------

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# status NS: the peer's /api/status (its viewer is on 127.0.0.1:8080 inside its namespace).
status() {
    ip netns exec "$1" curl -sf --max-time 5 -H 'Host: localhost:8080' http://127.0.0.1:8080/api/status || echo '{}'
}

# connect NS TARGET: the dashboard's connect box.
connect() {
    ip netns exec "$1" curl -s --max-time 40 -H 'Host: localhost:8080' -H 'Origin: http://localhost:8080' \
        -H 'Content-Type: application/json' -d "{\"addr\":\"$2\"}" http://127.0.0.1:8080/api/connect
}

# wait_for SECONDS WHAT COMMAND…: runs COMMAND every 0.2 s until it succeeds.
wait_for() {
    local limit=$1 what=$2; shift 2
    local start; start=$(now)
    while ! "$@"; do
        if awk -v a="$start" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
            fail "$what (not within ${limit} s)"
        fi
        sleep 0.2
    done
}

is_private_relayed() {
    status "$1" | jq -e '.self.reachability == "private" and (.self.relayed | length) > 0' >/dev/null
}

# connection NS PEER: "direct", "relayed" or "null" (not connected).
connection() {
    status "$1" | jq -r --arg id "$2" '[.peers[] | select(.id == $id) | .connection][0]'
}

start_peer() { # NAME NS [goop run arguments…]
    local name=$1 ns=$2; shift 2
    ip netns exec "$ns" "$GOOP" run --dir "$WORK/$name" "$@" >"$WORK/$name.out" 2>>"$WORK/$name.log" &
    eval "PID_$name=$!"
}

stop_peer() { # NAME
    local var="PID_$1"
    kill "${!var}" 2>/dev/null || true
    wait "${!var}" 2>/dev/null || true
}

# ---- the helper --------------------------------------------------------------------------

ip netns exec "$NS_PUB" "$GOOP" relay "$WORK/helper" --listen /ip4/198.18.0.1/tcp/4001 --private-addresses \
    >"$WORK/helper.out" 2>"$WORK/helper.log" &
wait_for 20 "the helper prints its address" grep -q '^listening /ip4/198.18.0.1/tcp/4001/p2p/' "$WORK/helper.out"
HELPER=$(sed -n 's/^listening \(\/ip4\/198.18.0.1\/tcp\/4001\/p2p\/.*\)$/\1/p' "$WORK/helper.out" | head -n 1)
say "helper $HELPER"

# ---- the peers ---------------------------------------------------------------------------

new_folder() { # NAME
    "$GOOP" init "$WORK/$1" >/dev/null
    cat >"$WORK/$1/goop.json" <<EOF
{
  "profile": { "label": "lab $1" },
  "lua": { "enabled": true },
  "p2p": { "mdns": false, "relays": ["$HELPER"] },
  "viewer": { "enabled": true, "addr": "127.0.0.1:8080" }
}
EOF
}
new_folder A
new_folder B
A_ID=$("$GOOP" id --dir "$WORK/A")
B_ID=$("$GOOP" id --dir "$WORK/B")
say "A $A_ID, B $B_ID"
start_peer B "$NS_B"
start_peer A "$NS_A"
t0=$(now)
wait_for 90 "B is private with a relayed address" is_private_relayed "$NS_B"
wait_for 90 "A is private with a relayed address" is_private_relayed "$NS_A"
say "ok both peers private with a relayed address ($(elapsed "$t0" "$(now)") s)"

# ---- A reaches B knowing only its peer ID --------------------------------------------------

out=$(ip netns exec "$NS_A" "$GOOP" call --dir "$WORK/A" --peer "$B_ID" hello '{"name":"lab"}' 2>>"$WORK/call.log") \
    || fail "goop call to B by peer ID: $out"
echo "$out" | grep -q '"message":"Hello, lab!"' || fail "goop call answered $out"
say "ok call by peer ID: $out"
ip netns exec "$NS_A" "$GOOP" site --dir "$WORK/A" --peer "$B_ID" /index.html >"$WORK/site.html" 2>>"$WORK/call.log" \
    || fail "goop site from B by peer ID"
cmp -s "$WORK/site.html" "$WORK/B/site/index.html" || fail "B's /index.html came back different"
say "ok site by peer ID: /index.html, $(wc -c <"$WORK/site.html") bytes, same as B's file"

# ---- direct or relayed -------------------------------------------------------------------

# One try: A's running peer connects to B by ID through the dashboard (a relayed connection
# first, then DCUtR). Prints "RELAYED DIRECT": seconds from the request to the connection
# (the answer of /api/connect) and to A's status showing B "direct" ("-" when it stays relayed
# for WAIT seconds; "x x" when the connection failed).
WAIT=${WAIT:-30}
punch() {
    local answer start relayed conn
    start=$(now)
    answer=$(connect "$NS_A" "$B_ID")
    echo "$answer" | jq -e '.ok' >/dev/null || { echo "connect failed: $answer" >&2; echo "x x"; return; }
    relayed=$(elapsed "$start" "$(now)")
    while awk -v a="$start" -v b="$(now)" -v l="$WAIT" 'BEGIN { exit !(b - a < l) }'; do
        conn=$(connection "$NS_A" "$B_ID")
        if [ "$conn" = direct ]; then echo "$relayed $(elapsed "$start" "$(now)")"; return; fi
        sleep 0.05
    done
    echo "$relayed -"
}

read -r first_relayed first <<<"$(punch)"
if [ "$SYMMETRIC" = 0 ]; then
    [ "$first" != "-" ] && [ "$first" != "x" ] || fail "no direct connection from A to B within ${WAIT} s"
    say "ok direct connection replaced the relayed one: connected in $first_relayed s, direct at $first s"
else
    [ "$first" = "-" ] || fail "a direct connection through a symmetric NAT ($first)? expected relayed"
    [ "$(connection "$NS_A" "$B_ID")" = relayed ] || fail "A is not connected to B through the helper"
    out=$(ip netns exec "$NS_A" "$GOOP" call --dir "$WORK/A" --peer "$B_ID" hello '{"name":"lab"}' 2>>"$WORK/call.log") \
        || fail "goop call over the relayed connection: $out"
    say "ok symmetric NAT: still relayed after ${WAIT} s, and a call works: $out"
fi

# ---- repeated hole punches -----------------------------------------------------------------

# Each try is a fresh peer A: a new folder (identity) listening on a new port. The same
# identity again would soon be refused by the helper (libp2p's relay allows one source peer 30
# circuits, then one per 2 minutes; each connect opens two, through the helper's TCP and QUIC
# addresses), and the same port again meets the last try's connections in TIME_WAIT: the
# kernel then dials the helper from another port, whose mapping the NAT tells B, and the
# punch misses (before the helper-dial fix, restarting A on port 4001 with its identity: 7 of
# 20 direct, 7 missed on the port, 6 refused by the helper).
times=()
ok=0
for i in $(seq 1 "$TRIES"); do
    stop_peer A
    new_folder "A$i"
    start_peer "A$i" "$NS_A" --listen "/ip4/0.0.0.0/tcp/$((4100 + i))"
    eval "PID_A=\$PID_A$i"
    wait_for 90 "A$i is private with a relayed address" is_private_relayed "$NS_A"
    read -r r t <<<"$(punch)"
    if [ "$t" != "-" ] && [ "$t" != "x" ]; then ok=$((ok + 1)); times+=("$t"); fi
    if [ "$t" = "-" ]; then t="still relayed after ${WAIT} s"; fi
    say "try $i: connected in $r s, direct at $t"
done
if [ "${#times[@]}" -gt 0 ]; then
    median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
else
    median="-"
fi
a_punches=$(cat "$WORK"/A*.log | grep -c "hole punch to .*: direct connection" || true)
b_punches=$(grep -c "hole punch to .*: direct connection" "$WORK/B.log" || true)
say "hole punch: $ok of $TRIES direct, median ${median} s from the connect request to direct (nat2 $nat2)"
say "hole punches logged as direct: by the A peers $a_punches, by B $b_punches"
if [ "$SYMMETRIC" = 0 ] && [ "$ok" = 0 ]; then fail "no hole punch succeeded"; fi
if [ "$SYMMETRIC" = 1 ] && [ "$ok" != 0 ]; then fail "$ok hole punches through a symmetric NAT"; fi
say "PASS"
