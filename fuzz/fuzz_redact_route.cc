// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: redaction (userspace/export/redact.h) and route templating
// (userspace/enrich/route_templater.h) on arbitrary request targets and header values.
// Input layout: byte 0 options (bit 0 auto_template, bit 1 a service-specific pattern set,
// bit 2 custom redaction keys); the rest is split at the first two NUL bytes into
// target, header value, pattern text (each may be empty; a pattern is used when the
// config loader would accept it).
// Invariants: a route is printable ASCII, at most kMaxRouteBytes (+ "/*") long, with no
// card number; masked text holds no card number; RedactRequestHeaders leaves no card number
// in a header and blanks never-exported ones.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "parsers/http/types.h"
#include "userspace/config/config.h"
#include "userspace/config/yaml_fields.h"
#include "userspace/enrich/route_templater.h"
#include "userspace/export/redact.h"

namespace {

using namespace redtap;

void Check(bool ok, const char* what, std::string_view text = {}) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s: \"%.*s\"\n", what, static_cast<int>(text.size()),
                 text.data());
    std::abort();
  }
}

std::string_view NextPart(std::string_view* rest) {
  const size_t z = rest->find('\0');
  std::string_view part = rest->substr(0, z);
  rest->remove_prefix(z == std::string_view::npos ? rest->size() : z + 1);
  return part;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t f = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string_view target = NextPart(&rest);
  const std::string_view value = NextPart(&rest);
  const std::string_view pattern = rest;

  config::RoutesConfig rc;
  rc.auto_template = f & 1;
  rc.patterns.push_back({"", "/api/orders/{order_id}/items"});
  rc.patterns.push_back({"", "/static/*"});
  if (f & 2) rc.patterns.push_back({"svc", "/v1/{rest...}"});
  // Only patterns the config loader accepts reach the templater (an invalid one may yield
  // its raw text as the route: the templater trusts the loader's check).
  const bool used_pattern = !pattern.empty() && config::detail::PatternProblem(pattern).empty();
  if (used_pattern) {
    rc.patterns.push_back({(f & 8) ? "svc" : "", std::string(pattern)});
  }
  const enrich::RouteTemplater routes(rc);

  config::RedactionConfig red;
  if (f & 4) red.query_keys = {"a", "id", std::string(value.substr(0, 8))};
  const exporter::Redactor redactor(red);

  std::string route;
  routes.Template((f & 16) ? "svc" : "other", target, &route);
  Check(route.size() <= enrich::RouteTemplater::kMaxRouteBytes + 2, "route too long", route);
  for (char c : route) Check(c >= 0x20 && c < 0x7f, "route not printable ASCII", route);
  // (A configured pattern is the route it yields: digits the operator wrote in it stay.)
  if (!used_pattern || !exporter::HasCardNumber(pattern)) {
    Check(!exporter::HasCardNumber(route), "card number in a route", route);
  }

  const size_t q = target.find('?');
  const std::string path = redactor.RedactPath(target.substr(0, q));
  Check(!exporter::HasCardNumber(path), "card number left by RedactPath", path);
  if (q != std::string_view::npos) {
    const std::string query = redactor.RedactQuery(target.substr(q + 1));
    Check(!exporter::HasCardNumber(query), "card number left by RedactQuery", query);
  }
  const std::string v = redactor.RedactValue(value);
  Check(!exporter::HasCardNumber(v), "card number left by RedactValue", v);
  const std::string m = exporter::MaskCardNumbers(target);
  Check(!exporter::HasCardNumber(m), "card number left by MaskCardNumbers", m);
  (void)redactor.IsSecretName(value);
  (void)enrich::ClassifySegment(value, f & 1);

  http::Request r;
  r.target = std::string(target);
  r.headers.push_back({"X-Card", std::string(value)});
  r.headers.push_back({"Cookie", std::string(value)});
  r.headers.push_back({std::string(value.substr(0, 16)), std::string(target)});
  (void)exporter::HeadersNeedRedaction(r);
  exporter::RedactRequestHeaders(&r);
  for (const auto& h : r.headers) {
    if (exporter::IsNeverExportedHeader(h.name)) {
      Check(h.value.empty(), "never-exported header kept its value");
    } else {
      Check(!exporter::HasCardNumber(h.value), "card number left in a header");
    }
  }
  Check(!exporter::HeadersNeedRedaction(r), "headers still need redaction after redacting");
  return 0;
}
