// SPDX-License-Identifier: Apache-2.0
// Loads the capture programs through the BPF loading library (userspace/bpf/: per-program
// fallback, one attach loop, hook statuses), and gives the agent the maps it reads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "redtap_abi.h"
#include "userspace/bpf/bpf_object.h"
#include "userspace/bpf/libbpf_log.h"
#include "userspace/bpf/tracefs.h"
#include "userspace/capture/tracker.h"
#include "userspace/common/bpf_links.h"
#include "userspace/common/status.h"
#include "userspace/config/config.h"

struct capture;
struct bpf_map;
struct bpf_link;
struct bpf_program;

namespace redtap {

class CaptureLoader : public KernelControl {
 public:
  ~CaptureLoader();

  /// Opens, configures and loads the capture programs. A program the verifier rejects is
  /// left out and reported as a failed hook; fatal errors (no BTF, no permission, nothing
  /// loads) come back as Status.
  static Result<std::unique_ptr<CaptureLoader>> Load(const config::Config& cfg);

  /// Attaches every hook; failures are recorded in hooks(), never fatal here.
  void AttachAll();
  /// Detaches everything (idempotent; also done by the destructor).
  void DetachAll();
  /// Hands over the links without detaching them (for one parallel detach at shutdown).
  std::vector<struct bpf_link*> TakeLinks();

  const std::vector<HookStatus>& hooks() const { return object_->hooks(); }
  /// True when every required hook is attached.
  bool Ready() const;

  int ring_buffer_fd() const;
  /// A program of the capture object by name (the TLS attacher attaches the SSL uprobes).
  struct bpf_program* FindProgram(const char* name) const;
  /// go_tls_sites: what a Go crypto/tls probe finds by its cookie (set before its link is
  /// made, deleted after the link is gone). Returns 0 or an errno (the map is full: 4096).
  int PutGoTlsSite(uint64_t id, const struct redtap_go_site& site);
  void DeleteGoTlsSite(uint64_t id) noexcept;
  /// Bytes written by the kernel and not yet consumed (fill gauge), and the ring's size.
  uint64_t RingBufferFill() const;
  uint64_t RingBufferSize() const { return ring_size_; }

  /// Kernel drop counters summed over CPUs, index enum redtap_drop_reason.
  std::array<uint64_t, REDTAP_DROP_MAX> DropCounters() const;
  static const char* DropReasonName(int reason);

  /// KernelControl: both act only while the kernel entry is still that connection (gen).
  void Mute(uint32_t tgid, uint32_t fd, uint64_t gen) noexcept override;
  void Rearm(uint32_t tgid, uint32_t fd, uint64_t gen) noexcept override;
  /// Removes entries of processes that no longer exist (their fds were closed by exit, not by
  /// close()). Returns how many were removed.
  size_t CollectDeadProcesses();
  /// Entries in the kernel connection table (walks it: call rarely).
  size_t TrackedConnections() const;

 private:
  CaptureLoader() = default;
  Status ApplyFilters(const config::Config& cfg);
  Status ApplyEndpointCaps(const config::Config& cfg);
  void SetState(uint32_t tgid, uint32_t fd, uint64_t gen, uint8_t state,
                bool only_if_http) noexcept;

  std::unique_ptr<BpfObject> object_;  // a Skeleton<struct capture>
  struct capture* skel_ = nullptr;     // owned by object_
  // Read-only mappings of the ring's consumer and producer position pages.
  const volatile unsigned long* ring_consumer_ = nullptr;
  const volatile unsigned long* ring_producer_ = nullptr;
  uint64_t ring_size_ = 0;
};

/// Per-endpoint capture: the request-line prefixes ("POST /api/payment/process") whose
/// requests and responses the kernel copies with ecommerce.capture_bytes_per_call instead of
/// capture.max_bytes_per_call: every ecommerce.payments.endpoints route up to its first
/// parameter, for its method (or for each common method when it has none). At most 64,
/// each at most REDTAP_ENDPOINT_PREFIX_LEN bytes.
std::vector<std::string> EndpointCapturePrefixes(const config::EcommerceConfig& e);

}  // namespace redtap
