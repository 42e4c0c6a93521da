// SPDX-License-Identifier: Apache-2.0
// The agent's own health, filled by the agent at scrape time and rendered by
// MetricsStore::RenderPrometheus as redtap_agent_* metrics.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace redtap::metrics {

struct AgentHealth {
  /// (reason, count) pairs, rendered in the given order; reasons are label values
  /// ("ringbuf_full", "event_queue_full", "seq_gap", "data_without_conn", "conn_evicted"...).
  using Reasons = std::vector<std::pair<std::string, uint64_t>>;

  uint64_t records_received = 0;        // redtap_agent_records_total: ring-buffer records read
  uint64_t transactions = 0;            // redtap_agent_transactions_total: HTTP transactions decoded
  uint64_t payload_moved_bytes = 0;     // redtap_agent_payload_bytes_total{kind="moved"}
  uint64_t payload_captured_bytes = 0;  // redtap_agent_payload_bytes_total{kind="captured"}
  Reasons kernel_drops;                 // redtap_agent_kernel_drops_total{reason}
  Reasons userspace_drops;              // redtap_agent_userspace_drops_total{reason}
  Reasons parse_errors;                 // redtap_agent_parse_errors_total{reason}
  uint64_t kernel_connections = 0;      // redtap_agent_tracked_connections{side="kernel"}
  uint64_t userspace_connections = 0;   // redtap_agent_tracked_connections{side="userspace"}
  uint64_t ring_buffer_fill_bytes = 0;  // redtap_agent_ring_buffer_fill_bytes
  uint64_t ring_buffer_size_bytes = 0;  // redtap_agent_ring_buffer_size_bytes
  uint64_t rss_bytes = 0;               // redtap_agent_resident_memory_bytes
  bool ready = false;                   // redtap_agent_ready: 1 once programs are attached
  uint64_t hooks_attached = 0;          // redtap_agent_hooks_attached
};

}  // namespace redtap::metrics
