// SPDX-License-Identifier: Apache-2.0
#include "parsers/db/types.h"

namespace redtap::db {

std::string_view SystemName(System s) noexcept {
  switch (s) {
    case System::kPostgresql:
      return "postgresql";
    case System::kMysql:
      return "mysql";
    case System::kRedis:
      return "redis";
  }
  return "unknown";
}

std::unique_ptr<Parser> MakeParser(System s, const Limits& limits) {
  switch (s) {
    case System::kPostgresql:
      return MakePostgresParser(limits);
    case System::kMysql:
      return MakeMysqlParser(limits);
    case System::kRedis:
      return MakeRedisParser(limits);
  }
  return nullptr;
}

}  // namespace redtap::db
