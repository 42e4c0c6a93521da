// SPDX-License-Identifier: Apache-2.0
// What the agent knows of one connection's process and endpoints, for enrichment.
#pragma once

#include <cstdint>
#include <string>

namespace redtap {

enum class Role : uint8_t { kServer = 0, kClient = 1 };

struct Endpoint {
  std::string address;  // "127.0.0.1", "::1" (IPv4-mapped IPv6 printed as IPv4)
  uint16_t port = 0;
};

struct ConnMeta {
  uint32_t pid = 0;     // tgid
  std::string command;  // process comm
  Role role = Role::kServer;
  Endpoint local;
  Endpoint remote;
  bool tls = false;
  /// Thread of the last data record of the connection (for a completed transaction: the
  /// thread that wrote a server's response or read a client's response). 0 = unknown.
  uint32_t tid = 0;
  /// server.* is the listening side: local for a server connection, remote for a client.
  const Endpoint& server() const { return role == Role::kServer ? local : remote; }
  const Endpoint& client() const { return role == Role::kServer ? remote : local; }
};

}  // namespace redtap
