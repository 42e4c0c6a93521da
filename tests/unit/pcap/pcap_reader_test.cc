// SPDX-License-Identifier: Apache-2.0
// The fast paths of `redtap pcap` give what the plain ones give: MappedPcapFile against
// libpcap (crafted files in both byte orders and both time resolutions, a cut last record,
// records longer than the snap length, and every capture of the public corpus).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/unit/pcap/crafted_packets.h"
#include "userspace/pcap/mapped_file.h"
#include "userspace/pcap/pcap_runner.h"

namespace redtap::pcap {
namespace {

using namespace crafted;  // NOLINT(build/namespaces): the packet builders
namespace fs = std::filesystem;

struct Got {
  std::string method, target;
  int status;
  uint64_t first_ts, last_ts;
  std::string client;
  bool operator==(const Got&) const = default;
};
struct Collect : TransactionSink {
  std::vector<Got> got;
  void OnTransaction(const http::Transaction& t, const ConnMeta& m) noexcept override {
    got.push_back({t.request.method, t.request.target, t.has_response ? t.response.status_code : 0,
                   t.request.first_byte_ts, t.response.last_byte_ts,
                   m.client().address + ":" + std::to_string(m.client().port)});
  }
};

struct FileRun {
  std::vector<Got> got;
  PcapStats stats;
};
FileRun Process(const std::string& path, FileReader reader) {
  FileRun run;
  Collect sink;
  auto r = ProcessFile(path, "", FlowLimits{}, &sink, DecodeOptions{}, reader);
  EXPECT_TRUE(r.ok()) << path << ": " << (r.ok() ? "" : r.error());
  if (r.ok()) run.stats = r.value();
  run.got = std::move(sink.got);
  return run;
}

void ExpectSameRuns(const std::string& path) {
  SCOPED_TRACE(path);
  const FileRun mapped = Process(path, FileReader::kAuto);
  const FileRun libpcap = Process(path, FileReader::kLibpcap);
  EXPECT_EQ(mapped.stats.packets, libpcap.stats.packets);
  EXPECT_EQ(mapped.stats.bytes, libpcap.stats.bytes);
  for (int i = 0; i < static_cast<int>(DecodeResult::kCount); ++i) {
    EXPECT_EQ(mapped.stats.decode[i], libpcap.stats.decode[i])
        << DecodeResultName(static_cast<DecodeResult>(i));
  }
  EXPECT_EQ(mapped.stats.flows.transactions, libpcap.stats.flows.transactions);
  EXPECT_EQ(mapped.stats.flows.segments, libpcap.stats.flows.segments);
  EXPECT_TRUE(mapped.got == libpcap.got);
}

// A little HTTP exchange, Ethernet frames with their times (µs).
std::vector<std::pair<uint64_t, std::string>> Frames() {
  const std::string req = "GET /r HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  std::vector<std::pair<uint64_t, std::string>> f;
  const uint32_t c = 0x0a000001, s = 0x0a000002;
  f.emplace_back(1'700'000'000'000'001,
                 Eth(Ipv4(Tcp(40000, 80, 1, 1, kTcpAck | kTcpPsh, req), 6, c, s)));
  f.emplace_back(
      1'700'000'000'000'900,
      Eth(Ipv4(Tcp(80, 40000, 1, 1 + static_cast<uint32_t>(req.size()), kTcpAck | kTcpPsh, resp), 6,
               s, c)));
  return f;
}

// Rewrites a little-endian classic pcap file (as PcapFile makes) in big-endian order, or
// with the nanosecond magic (times multiplied by 1000).
std::string Swapped(const std::string& le) {
  auto swap32 = [](std::string* s, size_t at) {
    std::swap((*s)[at], (*s)[at + 3]);
    std::swap((*s)[at + 1], (*s)[at + 2]);
  };
  std::string be = le;
  swap32(&be, 0);
  std::swap(be[4], be[5]);
  std::swap(be[6], be[7]);
  for (size_t at : {8, 12, 16, 20}) swap32(&be, at);
  size_t pos = 24;
  while (pos + 16 <= be.size()) {
    uint32_t caplen;
    std::memcpy(&caplen, le.data() + pos + 8, 4);
    for (size_t at = 0; at < 16; at += 4) swap32(&be, pos + at);
    pos += 16 + caplen;
  }
  return be;
}
std::string Nanos(const std::string& le) {
  std::string ns = le;
  ns.replace(0, 4, Le32(0xa1b23c4d));
  size_t pos = 24;
  while (pos + 16 <= ns.size()) {
    uint32_t usec, caplen;
    std::memcpy(&usec, ns.data() + pos + 4, 4);
    std::memcpy(&caplen, ns.data() + pos + 8, 4);
    ns.replace(pos + 4, 4, Le32(usec * 1000 + 7));
    pos += 16 + caplen;
  }
  return ns;
}

TEST(MappedPcapFile, ByteOrdersAndResolutions) {
  const std::string le = PcapFile(kLinkEthernet, Frames());
  for (const auto& [name, bytes] :
       std::vector<std::pair<const char*, std::string>>{{"mapped-le.pcap", le},
                                                        {"mapped-be.pcap", Swapped(le)},
                                                        {"mapped-ns.pcap", Nanos(le)}}) {
    const std::string path = WriteTempFile(bytes, name);
    ASSERT_NE(MappedPcapFile::Open(path), nullptr) << name;
    ExpectSameRuns(path);
    const FileRun run = Process(path, FileReader::kAuto);
    ASSERT_EQ(run.got.size(), 1u) << name;
    EXPECT_EQ(run.got[0].target, "/r");
    EXPECT_EQ(run.got[0].first_ts % 1000, std::string(name) == "mapped-ns.pcap" ? 7u : 0u);
    std::remove(path.c_str());
  }
}

TEST(MappedPcapFile, CutRecordsSnapLengthAndOtherFormats) {
  const std::string le = PcapFile(kLinkEthernet, Frames());
  // The file ends inside the last record, then inside its header: what came before counts.
  for (size_t cut : {size_t{5}, size_t{20}}) {
    const std::string path = WriteTempFile(le.substr(0, le.size() - cut), "mapped-cut.pcap");
    auto f = MappedPcapFile::Open(path);
    ASSERT_NE(f, nullptr);
    std::string_view frame;
    uint64_t ts;
    int n = 0;
    while (f->Next(&frame, &ts)) ++n;
    EXPECT_EQ(n, 1);
    EXPECT_TRUE(f->truncated());
    ExpectSameRuns(path);
    std::remove(path.c_str());
  }
  // A snap length of 60 in the file header: longer records are cut to it, as libpcap does.
  std::string snap = le;
  snap.replace(16, 4, Le32(60));
  std::string path = WriteTempFile(snap, "mapped-snap.pcap");
  ExpectSameRuns(path);
  auto f = MappedPcapFile::Open(path);
  ASSERT_NE(f, nullptr);
  std::string_view frame;
  uint64_t ts;
  ASSERT_TRUE(f->Next(&frame, &ts));
  EXPECT_EQ(frame.size(), 60u);
  std::remove(path.c_str());
  // Not mapped (libpcap's job): pcapng, a link type DecodeFrame does not know, stdin.
  std::string other = le;
  other.replace(20, 4, Le32(147));  // LINKTYPE_USER0
  path = WriteTempFile(other, "mapped-user0.pcap");
  EXPECT_EQ(MappedPcapFile::Open(path), nullptr);
  std::remove(path.c_str());
  path = WriteTempFile(Le32(0x0a0d0d0a) + std::string(60, '\0'), "mapped-ng.pcapng");
  EXPECT_EQ(MappedPcapFile::Open(path), nullptr);
  std::remove(path.c_str());
  EXPECT_EQ(MappedPcapFile::Open("-"), nullptr);
  EXPECT_EQ(MappedPcapFile::Open("/nonexistent/x.pcap"), nullptr);
}

TEST(MappedPcapFile, SameAsLibpcapOnTheCorpus) {
  const fs::path root = fs::path(REDTAP_CORPORA_DIR) / "pcap";
  if (!fs::exists(root)) GTEST_SKIP() << root << " not found";
  int files = 0, mapped = 0;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string ext = e.path().extension().string();
    if (!e.is_regular_file() || (ext != ".pcap" && ext != ".pcapng" && ext != ".cap")) continue;
    ++files;
    if (MappedPcapFile::Open(e.path().string()) != nullptr) ++mapped;
    ExpectSameRuns(e.path().string());
  }
  EXPECT_GT(files, 100);
  EXPECT_GT(mapped, files / 2);  // most of the corpus is classic pcap
  std::printf("corpus: %d captures, %d read through MappedPcapFile\n", files, mapped);
}

// The mapped reader takes exactly the link types DecodeFrame knows.
TEST(MappedPcapFile, DecodableLinkTypesAreDecodeFramesOwn) {
  for (int t :
       {kLinkNull, kLinkEthernet, kLinkRaw, kLinkRawBsd, kLinkRawLinktype, kLinkLoop, kLinkLinuxSll,
        kLinkArcnetLinux, kLinkIpv4, kLinkIpv6, kLinkNflog, kLinkLinuxSll2}) {
    EXPECT_TRUE(IsDecodableLinkType(t)) << t;
  }
  for (int t : {9, 105, 127, 147, 65535, -1}) EXPECT_FALSE(IsDecodableLinkType(t)) << t;
}

}  // namespace
}  // namespace redtap::pcap
