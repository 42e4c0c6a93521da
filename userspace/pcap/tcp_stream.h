// SPDX-License-Identifier: Apache-2.0
// TcpStream: one direction of a TCP connection put back in order. Pure: fed segments
// (sequence number, payload, time), it hands in-order bytes and holes to a StreamOutput.
// In-order payload is passed through without a copy; only out-of-order segments are
// buffered, up to a byte bound. Retransmissions and overlaps keep the bytes seen first.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace redtap::pcap {

/// Receives a stream's bytes in order.
class StreamOutput {
 public:
  virtual ~StreamOutput() = default;
  /// `data` was captured; `wire_len >= data.size()` bytes moved (the rest was cut by the
  /// snap length). `ts_ns` is the time of the segment that carried them.
  virtual void OnData(std::string_view data, uint64_t wire_len, uint64_t ts_ns) noexcept = 0;
  /// `len` bytes of the stream were never captured (lost or skipped); 0 = an unknown number
  /// (the stream jumped to an unrelated sequence number).
  virtual void OnHole(uint64_t len, uint64_t ts_ns) noexcept = 0;
};

struct StreamStats {
  uint64_t segments = 0;      // segments with payload
  uint64_t out_of_order = 0;  // segments buffered because they came early
  uint64_t retransmits = 0;   // segments entirely seen before (dropped)
  uint64_t overlaps = 0;      // segments partly seen before (trimmed)
  uint64_t holes = 0;         // ranges never captured, skipped
  uint64_t hole_bytes = 0;
  uint64_t forced_skips = 0;  // holes skipped because the buffer bound was reached
  uint64_t jumps = 0;         // sequence jumps (4-tuple reuse without a captured SYN)
};

class TcpStream {
 public:
  explicit TcpStream(size_t max_buffered = 1 << 20) : max_buffered_(max_buffered) {}

  /// The SYN of this direction: data starts at `seq + 1`.
  void OnSyn(uint32_t seq) noexcept;
  /// One segment of this direction (`fin`: it carries a FIN after its payload).
  void OnSegment(uint32_t seq, std::string_view data, uint32_t wire_len, bool fin, uint64_t ts_ns,
                 StreamOutput* out) noexcept;
  /// The other direction acknowledged everything before `ack`: bytes before it that were
  /// never captured will not come any more (the receiver has them), so skip them now.
  void OnPeerAck(uint32_t ack, uint64_t ts_ns, StreamOutput* out) noexcept;
  /// Delivers everything buffered, skipping the holes between (end of capture, close,
  /// eviction).
  void Flush(uint64_t ts_ns, StreamOutput* out) noexcept;
  /// Skips to the first buffered segment and delivers what follows it (memory pressure).
  void ForceSkip(uint64_t ts_ns, StreamOutput* out) noexcept;

  bool started() const { return has_next_; }
  bool fin_done() const { return fin_done_; }
  uint32_t next_seq() const { return next_; }
  size_t buffered_bytes() const { return buffered_; }
  size_t buffered_segments() const { return ooo_.size(); }
  const StreamStats& stats() const { return stats_; }

 private:
  struct Segment {
    uint32_t seq;
    uint32_t wire_len;
    bool fin;
    uint64_t ts;
    std::string data;
  };
  // Delivers [seq, seq+wire) trimmed to start at next_ (caller checked it reaches past it).
  void Deliver(uint32_t seq, std::string_view data, uint32_t wire_len, bool fin, uint64_t ts_ns,
               StreamOutput* out) noexcept;
  void Drain(StreamOutput* out) noexcept;
  void SkipTo(uint32_t seq, uint64_t ts_ns, StreamOutput* out) noexcept;

  size_t max_buffered_;
  bool has_next_ = false;
  bool fin_done_ = false;
  uint32_t next_ = 0;
  size_t buffered_ = 0;
  std::vector<Segment> ooo_;  // sorted by sequence (relative to next_)
  StreamStats stats_;
};

}  // namespace redtap::pcap
