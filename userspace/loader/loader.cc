// SPDX-License-Identifier: Apache-2.0
#include "userspace/loader/loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "capture.skel.h"
#include "userspace/common/errno_text.h"
#include "userspace/common/process.h"

namespace redtap {
namespace {

// Every program of capture.bpf.c. sendfile and accept (without 4) are optional: many kernels
// route them through other entry points and capture stays exact without them for servers
// that do not use them.
std::vector<HookSpec> CaptureHooks() {
  return {
      {"read_exit", true},
      {"write_exit", true},
      {"readv_exit", true},
      {"writev_exit", true},
      {"recvfrom_exit", true},
      {"sendto_exit", true},
      {"recvmsg_exit", true},
      {"sendmsg_exit", true},
      {"sendfile_exit", false},
      {"accept4_exit", true},
      {"accept_exit", false},
      {"connect_exit", true},
      {"close_enter", true},
      // TLS: new processes may map a libssl not attached yet. The SSL uprobes themselves are
      // attached per library file by tls::TlsAttacher, not here.
      {"process_exec", false},
  };
}

// Applies the config to one opened instance (rodata, map sizes). `probing`: the instance
// only tells whether a program passes the verifier, so the maps stay small.
Status ConfigureCapture(const config::Config& cfg, struct capture* s, bool probing) {
  s->rodata->cfg_self_tgid = static_cast<uint32_t>(getpid());
  s->rodata->cfg_capture_cap = cfg.capture.max_bytes_per_call;
  s->rodata->cfg_wakeup_bytes = cfg.capture.wakeup_bytes;
  s->rodata->cfg_comm_include = !cfg.filter.include_processes.empty();
  s->rodata->cfg_comm_exclude = !cfg.filter.exclude_processes.empty();
  s->rodata->cfg_port_include = !cfg.filter.include_ports.empty();
  s->rodata->cfg_port_exclude = !cfg.filter.exclude_ports.empty();
  s->rodata->cfg_tls = cfg.tls.enabled;
  s->rodata->cfg_endpoint_caps = !EndpointCapturePrefixes(cfg.ecommerce).empty();
  // The e-commerce view reads request and response bodies (amounts, decline reasons).
  s->rodata->cfg_skip_bodies = cfg.capture.skip_bodies && !cfg.ecommerce.enabled();
  s->rodata->cfg_db = cfg.db.enabled;
  s->rodata->cfg_db_hints =
      cfg.db.enabled && (!cfg.db.postgresql_ports.empty() || !cfg.db.mysql_ports.empty() ||
                         !cfg.db.redis_ports.empty());
  int err =
      bpf_map__set_max_entries(s->maps.conn_map, probing ? 1024 : cfg.capture.max_connections);
  if (!err)
    err = bpf_map__set_max_entries(s->maps.events_rb,
                                   probing ? (1u << 20) : cfg.capture.ring_buffer_bytes);
  if (err) return Status::Error("cannot size BPF maps: " + ErrnoText(err));
  return Status::Ok();
}

}  // namespace

CaptureLoader::~CaptureLoader() {
  DetachAll();
  long page = sysconf(_SC_PAGESIZE);
  if (ring_consumer_) munmap(const_cast<unsigned long*>(ring_consumer_), page);
  if (ring_producer_) munmap(const_cast<unsigned long*>(ring_producer_), page);
}

Result<std::unique_ptr<CaptureLoader>> CaptureLoader::Load(const config::Config& cfg) {
  std::unique_ptr<CaptureLoader> l(new CaptureLoader());
  LoadOptions o;
  o.open_error = "cannot open the capture BPF object: ";
  o.load_error = "loading the capture programs failed: ";
  o.load_hint =
      " (run `redtap doctor`; needs root or CAP_BPF+CAP_PERFMON, and kernel BTF at "
      "/sys/kernel/btf/vmlinux; run with --log-level debug for the verifier log)";
  auto loaded = Skeleton<struct capture>::Load(
      [&cfg](struct capture* s, bool probing) { return ConfigureCapture(cfg, s, probing); },
      std::move(o));
  if (!loaded.ok()) return loaded.status();
  l->skel_ = loaded.value()->skel();
  l->object_ = std::move(loaded.value());
  auto* s = l->skel_;
  REDTAP_RETURN_IF_ERROR(l->ApplyFilters(cfg));
  REDTAP_RETURN_IF_ERROR(l->ApplyEndpointCaps(cfg));
  // Map the ring's position pages read-only for the fill gauge (libbpf 1.1 has no API for it).
  long page = sysconf(_SC_PAGESIZE);
  int rfd = bpf_map__fd(s->maps.events_rb);
  void* c = mmap(nullptr, page, PROT_READ, MAP_SHARED, rfd, 0);
  void* p = mmap(nullptr, page, PROT_READ, MAP_SHARED, rfd, page);
  if (c != MAP_FAILED) l->ring_consumer_ = static_cast<const volatile unsigned long*>(c);
  if (p != MAP_FAILED) l->ring_producer_ = static_cast<const volatile unsigned long*>(p);
  l->ring_size_ = cfg.capture.ring_buffer_bytes;
  return l;
}

std::vector<std::string> EndpointCapturePrefixes(const config::EcommerceConfig& e) {
  std::vector<std::string> out;
  for (const auto& ep : e.payments.endpoints) {
    std::string literal = ep.route.substr(0, ep.route.find_first_of("{*"));
    std::vector<std::string> methods;
    if (ep.method.empty()) {
      methods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    } else {
      methods = {ep.method};
    }
    for (const auto& m : methods) {
      std::string p = m + " " + literal;
      if (p.size() > REDTAP_ENDPOINT_PREFIX_LEN) p.resize(REDTAP_ENDPOINT_PREFIX_LEN);
      if (std::find(out.begin(), out.end(), p) == out.end() && out.size() < 64) out.push_back(p);
    }
  }
  return out;
}

Status CaptureLoader::ApplyEndpointCaps(const config::Config& cfg) {
  uint8_t shift = 0;
  while ((1u << shift) < cfg.ecommerce.capture_bytes_per_call) ++shift;
  for (const std::string& p : EndpointCapturePrefixes(cfg.ecommerce)) {
    redtap_endpoint_key key = {};
    key.prefixlen = static_cast<uint32_t>(p.size() * 8);
    std::memcpy(key.data, p.data(), p.size());
    if (bpf_map__update_elem(skel_->maps.endpoint_cap_map, &key, sizeof(key), &shift, sizeof(shift),
                             BPF_ANY)) {
      return Status::Error("ecommerce: cannot add the capture prefix \"" + p +
                           "\": " + ErrnoText(errno));
    }
    spdlog::debug("per-endpoint capture: \"{}\" -> {} bytes per call", p, 1u << shift);
  }
  return Status::Ok();
}

Status CaptureLoader::ApplyFilters(const config::Config& cfg) {
  auto put_comm = [&](const std::string& name, uint8_t v) -> Status {
    char key[REDTAP_COMM_LEN] = {};
    std::strncpy(key, name.c_str(), sizeof(key) - 1);
    if (bpf_map__update_elem(skel_->maps.comm_filter_map, key, sizeof(key), &v, sizeof(v), BPF_ANY))
      return Status::Error("filter: cannot add process " + name + ": " + ErrnoText(errno));
    return Status::Ok();
  };
  auto put_port = [&](uint16_t port, uint8_t v) -> Status {
    if (bpf_map__update_elem(skel_->maps.port_filter_map, &port, sizeof(port), &v, sizeof(v),
                             BPF_ANY))
      return Status::Error("filter: cannot add port " + std::to_string(port) + ": " +
                           ErrnoText(errno));
    return Status::Ok();
  };
  for (const auto& c : cfg.filter.include_processes) REDTAP_RETURN_IF_ERROR(put_comm(c, 1));
  for (const auto& c : cfg.filter.exclude_processes) REDTAP_RETURN_IF_ERROR(put_comm(c, 2));
  for (auto p : cfg.filter.include_ports) REDTAP_RETURN_IF_ERROR(put_port(p, 1));
  for (auto p : cfg.filter.exclude_ports) REDTAP_RETURN_IF_ERROR(put_port(p, 2));
  if (cfg.db.enabled) {
    auto put_db = [&](uint16_t port, uint8_t proto) -> Status {
      if (bpf_map__update_elem(skel_->maps.db_port_map, &port, sizeof(port), &proto, sizeof(proto),
                               BPF_ANY))
        return Status::Error("db: cannot add port " + std::to_string(port) + ": " +
                             ErrnoText(errno));
      return Status::Ok();
    };
    for (auto p : cfg.db.postgresql_ports)
      REDTAP_RETURN_IF_ERROR(put_db(p, REDTAP_PROTO_POSTGRESQL));
    for (auto p : cfg.db.mysql_ports) REDTAP_RETURN_IF_ERROR(put_db(p, REDTAP_PROTO_MYSQL));
    for (auto p : cfg.db.redis_ports) REDTAP_RETURN_IF_ERROR(put_db(p, REDTAP_PROTO_REDIS));
  }
  return Status::Ok();
}

void CaptureLoader::AttachAll() { object_->AttachAll(CaptureHooks()); }

std::vector<struct bpf_link*> CaptureLoader::TakeLinks() { return object_->TakeLinks(); }

void CaptureLoader::DetachAll() {
  if (object_) object_->DetachAll();
}

bool CaptureLoader::Ready() const { return object_->Ready(); }

int CaptureLoader::ring_buffer_fd() const { return bpf_map__fd(skel_->maps.events_rb); }

struct bpf_program* CaptureLoader::FindProgram(const char* name) const {
  return object_->FindProgram(name);
}

int CaptureLoader::PutGoTlsSite(uint64_t id, const struct redtap_go_site& site) {
  if (bpf_map__update_elem(skel_->maps.go_tls_sites, &id, sizeof(id), &site, sizeof(site),
                           BPF_ANY)) {
    return errno;
  }
  return 0;
}

void CaptureLoader::DeleteGoTlsSite(uint64_t id) noexcept {
  bpf_map__delete_elem(skel_->maps.go_tls_sites, &id, sizeof(id), 0);
}

uint64_t CaptureLoader::RingBufferFill() const {
  if (!ring_consumer_ || !ring_producer_) return 0;
  unsigned long cons = __atomic_load_n(ring_consumer_, __ATOMIC_ACQUIRE);
  unsigned long prod = __atomic_load_n(ring_producer_, __ATOMIC_ACQUIRE);
  return prod >= cons ? prod - cons : 0;
}

std::array<uint64_t, REDTAP_DROP_MAX> CaptureLoader::DropCounters() const {
  std::array<uint64_t, REDTAP_DROP_MAX> out{};
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return out;
  std::vector<uint64_t> vals(ncpu);
  for (uint32_t r = 0; r < REDTAP_DROP_MAX; r++) {
    if (bpf_map__lookup_elem(skel_->maps.drop_stats, &r, sizeof(r), vals.data(),
                             vals.size() * sizeof(uint64_t), 0) == 0) {
      for (auto v : vals) out[r] += v;
    }
  }
  return out;
}

const char* CaptureLoader::DropReasonName(int reason) {
  switch (reason) {
    case REDTAP_DROP_RINGBUF_FULL:
      return "ringbuf_full";
    case REDTAP_DROP_CONN_TABLE_FULL:
      return "conn_table_full";
    case REDTAP_DROP_TRUNCATED:
      return "truncated";
    case REDTAP_DROP_READ_FAULT:
      return "read_fault";
    case REDTAP_DROP_IOV_LIMIT:
      return "iov_limit";
    case REDTAP_DROP_TLS_NO_FD:
      return "tls_no_fd";
    case REDTAP_DROP_TLS_MISSED_READ:
      return "tls_missed_read";
  }
  return "unknown";
}

void CaptureLoader::Mute(uint32_t tgid, uint32_t fd, uint64_t gen) noexcept {
  SetState(tgid, fd, gen, REDTAP_STATE_IGNORED, false);
}

void CaptureLoader::Rearm(uint32_t tgid, uint32_t fd, uint64_t gen) noexcept {
  SetState(tgid, fd, gen, REDTAP_STATE_REARMED, true);
}

void CaptureLoader::SetState(uint32_t tgid, uint32_t fd, uint64_t gen, uint8_t state,
                             bool only_if_http) noexcept {
  redtap_conn_key key{tgid, fd};
  redtap_conn_info info{};
  if (bpf_map__lookup_elem(skel_->maps.conn_map, &key, sizeof(key), &info, sizeof(info), 0)) return;
  if (info.gen != gen || (only_if_http && info.state != REDTAP_STATE_HTTP)) return;
  info.state = state;
  bpf_map__update_elem(skel_->maps.conn_map, &key, sizeof(key), &info, sizeof(info), BPF_EXIST);
}

size_t CaptureLoader::CollectDeadProcesses() {
  std::vector<redtap_conn_key> dead;
  redtap_conn_key key{}, next{};
  const void* prev = nullptr;
  int fd = bpf_map__fd(skel_->maps.conn_map);
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (next.tgid != 0 && !ProcessAlive(next.tgid)) dead.push_back(next);
    key = next;
    prev = &key;
  }
  for (const auto& k : dead) bpf_map_delete_elem(fd, &k);
  return dead.size();
}

size_t CaptureLoader::TrackedConnections() const {
  redtap_conn_key key{}, next{};
  const void* prev = nullptr;
  size_t n = 0;
  int fd = bpf_map__fd(skel_->maps.conn_map);
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    n++;
    key = next;
    prev = &key;
  }
  return n;
}

}  // namespace redtap
