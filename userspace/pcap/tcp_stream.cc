// SPDX-License-Identifier: Apache-2.0
#include "userspace/pcap/tcp_stream.h"

#include <algorithm>

namespace redtap::pcap {
namespace {

// Serial-number difference (RFC 1982): positive when `a` is after `b`.
inline int32_t SeqDiff(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b); }

// Sequence distance beyond which a segment is taken as a new stream, not a retransmission
// or an early segment (16 MiB: far beyond any buffer bound here).
constexpr int32_t kJump = 1 << 24;

}  // namespace

void TcpStream::OnSyn(uint32_t seq) noexcept {
  if (has_next_) return;  // a retransmitted SYN, or one after data: keep what we have
  has_next_ = true;
  next_ = seq + 1;
}

void TcpStream::Deliver(uint32_t seq, std::string_view data, uint32_t wire_len, bool fin,
                        uint64_t ts_ns, StreamOutput* out) noexcept {
  const int32_t d = SeqDiff(seq, next_);
  if (d < 0) {  // overlap with bytes already delivered: keep those, trim the front
    const uint32_t trim = static_cast<uint32_t>(-d);
    ++stats_.overlaps;
    data.remove_prefix(std::min<size_t>(trim, data.size()));
    wire_len -= trim;
  }
  if (wire_len > 0) {
    out->OnData(data, wire_len, ts_ns);
    next_ += wire_len;
  }
  if (fin && !fin_done_) {
    fin_done_ = true;
    next_ += 1;  // the FIN takes one sequence number
  }
}

void TcpStream::OnSegment(uint32_t seq, std::string_view data, uint32_t wire_len, bool fin,
                          uint64_t ts_ns, StreamOutput* out) noexcept {
  if (wire_len == 0 && !fin) return;  // pure ACK / window update
  if (wire_len > 0) ++stats_.segments;
  if (!has_next_) {  // the capture starts mid-connection: take this segment as the start
    has_next_ = true;
    next_ = seq;
  }
  if (wire_len > 0 && (SeqDiff(seq, next_) > kJump || SeqDiff(seq, next_) < -kJump)) {
    // Far from anything this stream could send: the 4-tuple was reused by a connection
    // whose SYN was not captured (or the capture lost a lot). Start over at this segment.
    ++stats_.jumps;
    Flush(ts_ns, out);
    out->OnHole(0, ts_ns);
    next_ = seq;
    fin_done_ = false;
  }
  if (fin_done_) {
    if (wire_len > 0) ++stats_.retransmits;
    return;
  }
  const int32_t d = SeqDiff(seq, next_);
  const int64_t end = static_cast<int64_t>(d) + wire_len;  // relative to next_
  if (end <= 0 && !(fin && end == 0 && d <= 0)) {
    if (wire_len > 0) ++stats_.retransmits;
    return;
  }
  if (d <= 0) {
    Deliver(seq, data, wire_len, fin, ts_ns, out);
    Drain(out);
    return;
  }
  // Early: buffer a copy, sorted by sequence.
  ++stats_.out_of_order;
  auto pos = std::find_if(ooo_.begin(), ooo_.end(),
                          [&](const Segment& s) { return SeqDiff(s.seq, seq) > 0; });
  ooo_.insert(pos, Segment{seq, wire_len, fin, ts_ns, std::string(data)});
  buffered_ += data.size() + sizeof(Segment);
  while (buffered_ > max_buffered_ && !ooo_.empty()) ForceSkip(ts_ns, out);
}

void TcpStream::Drain(StreamOutput* out) noexcept {
  size_t i = 0;
  for (; i < ooo_.size(); ++i) {
    Segment& s = ooo_[i];
    if (fin_done_) {
      ++stats_.retransmits;
      continue;
    }
    const int32_t d = SeqDiff(s.seq, next_);
    if (d > 0) break;  // still a hole before it
    const int64_t end = static_cast<int64_t>(d) + s.wire_len;
    if (end <= 0 && !(s.fin && end == 0)) {
      ++stats_.retransmits;
      continue;
    }
    Deliver(s.seq, s.data, s.wire_len, s.fin, s.ts, out);
  }
  if (i == 0) return;
  for (size_t j = 0; j < i; ++j) buffered_ -= ooo_[j].data.size() + sizeof(Segment);
  ooo_.erase(ooo_.begin(), ooo_.begin() + static_cast<std::ptrdiff_t>(i));
}

void TcpStream::SkipTo(uint32_t seq, uint64_t ts_ns, StreamOutput* out) noexcept {
  const int32_t d = SeqDiff(seq, next_);
  if (d <= 0) return;
  ++stats_.holes;
  stats_.hole_bytes += static_cast<uint32_t>(d);
  out->OnHole(static_cast<uint32_t>(d), ts_ns);
  next_ = seq;
}

void TcpStream::OnPeerAck(uint32_t ack, uint64_t ts_ns, StreamOutput* out) noexcept {
  if (!has_next_ || fin_done_) return;
  const int32_t d = SeqDiff(ack, next_);
  if (d <= 0 || d > (1 << 30)) return;
  while (!fin_done_ && SeqDiff(ack, next_) > 0) {
    // Skip up to the first buffered segment before `ack` (Drain then delivers it), or to
    // `ack` itself.
    uint32_t target = ack;
    uint64_t ts = ts_ns;
    if (!ooo_.empty() && SeqDiff(ooo_.front().seq, ack) < 0) {
      target = ooo_.front().seq;
      ts = std::min(ts_ns, ooo_.front().ts);
    }
    SkipTo(target, ts, out);
    Drain(out);
  }
}

void TcpStream::ForceSkip(uint64_t ts_ns, StreamOutput* out) noexcept {
  if (ooo_.empty()) return;
  ++stats_.forced_skips;
  SkipTo(ooo_.front().seq, std::min(ts_ns, ooo_.front().ts), out);
  Drain(out);
}

void TcpStream::Flush(uint64_t ts_ns, StreamOutput* out) noexcept {
  while (!ooo_.empty()) {
    SkipTo(ooo_.front().seq, std::min(ts_ns, ooo_.front().ts), out);
    Drain(out);
  }
}

}  // namespace redtap::pcap
