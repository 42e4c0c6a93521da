// SPDX-License-Identifier: Apache-2.0
// The SQL summariser: one hand-written lexer pass over the statement feeds a text writer
// (literals -> '?') and a small state machine that finds the operation and the table. Linear in
// the input, no regex, no allocation per token, never reads past the input.
#include "parsers/db/sql.h"

#include <algorithm>
#include <array>
#include <cstddef>

#include "parsers/db/types.h"

namespace redtap::db::sql {
namespace {

// ---------------------------------------------------------------------------------------------
// Keywords

enum KeywordFlag : uint8_t {
  kStmt = 1,      // may start a statement
  kReserved = 2,  // never a table name or an alias (ends a table reference)
  kPrefix = 4,    // may stand between a table keyword and the name (ONLY, IF NOT EXISTS, ...)
  kMain = 8,      // the statement after a WITH's CTEs
};

// The keywords the analyser reacts to by name.
enum class Id : uint8_t {
  kNone,
  kAbort,
  kAnalyse,
  kAs,
  kCopy,
  kDelete,
  kDistinct,
  kEnd,
  kFrom,
  kGrant,
  kIn,
  kInsert,
  kInto,
  kJoin,
  kLateral,
  kMerge,
  kRecursive,
  kReplace,
  kRevoke,
  kSelect,
  kStart,
  kStraightJoin,
  kTable,
  kTransaction,
  kTruncate,
  kUpdate,
  kUpsert,
  kUsing,
  kWith,
};

struct Keyword {
  std::string_view word;  // upper case
  uint8_t flags;
  Id id = Id::kNone;
};

// Sorted (checked below). Words people commonly use as table or column names (USER, STATUS,
// TRANSACTION, ...) are either absent or not kReserved, so "FROM transaction" still finds its
// table.
constexpr Keyword kKeywords[] = {
    {"ABORT", kStmt, Id::kAbort},
    {"ADD", 0},
    {"ALL", kReserved},
    {"ALTER", kStmt | kReserved},
    {"ANALYSE", kStmt, Id::kAnalyse},
    {"ANALYZE", kStmt},
    {"AND", kReserved},
    {"ANY", kReserved},
    {"ARRAY", 0},
    {"AS", kReserved, Id::kAs},
    {"ASC", kReserved},
    {"BEGIN", kStmt},
    {"BETWEEN", kReserved},
    {"BIGINT", 0},
    {"BINLOG", kStmt},
    {"BOOLEAN", 0},
    {"BY", kReserved},
    {"CACHE", kStmt},
    {"CALL", kStmt},
    {"CASCADE", 0},
    {"CASE", kReserved},
    {"CAST", 0},
    {"CHANGE", kStmt},
    {"CHECK", kStmt | kReserved},
    {"CHECKPOINT", kStmt},
    {"CHECKSUM", kStmt},
    {"CLOSE", kStmt},
    {"CLUSTER", kStmt},
    {"COALESCE", 0},
    {"COLLATE", kReserved},
    {"COLUMN", 0},
    {"COMMENT", kStmt},
    {"COMMIT", kStmt},
    {"CONFLICT", 0},
    {"CONSTRAINT", kReserved},
    {"COPY", kStmt, Id::kCopy},
    {"COUNT", 0},
    {"CREATE", kStmt | kReserved},
    {"CROSS", kReserved},
    {"CURRENT_DATE", 0},
    {"CURRENT_TIME", 0},
    {"CURRENT_TIMESTAMP", 0},
    {"DEALLOCATE", kStmt},
    {"DECLARE", kStmt},
    {"DEFAULT", kReserved},
    {"DELAYED", kPrefix},
    {"DELETE", kStmt | kReserved | kMain, Id::kDelete},
    {"DESC", kStmt | kReserved},
    {"DESCRIBE", kStmt},
    {"DISCARD", kStmt},
    {"DISTINCT", kReserved, Id::kDistinct},
    {"DO", kStmt},
    {"DROP", kStmt | kReserved},
    {"DUAL", kReserved},
    {"DUMPFILE", kReserved},
    {"DUPLICATE", 0},
    {"ELSE", kReserved},
    {"END", kStmt | kReserved, Id::kEnd},
    {"EXCEPT", kReserved},
    {"EXECUTE", kStmt},
    {"EXISTS", kReserved | kPrefix},
    {"EXPLAIN", kStmt},
    {"FALSE", kReserved},
    {"FETCH", kStmt | kReserved},
    {"FLUSH", kStmt},
    {"FOR", kReserved},
    {"FORCE", kReserved},
    {"FOREIGN", kReserved},
    {"FROM", kReserved, Id::kFrom},
    {"FULL", kReserved},
    {"GRANT", kStmt | kReserved, Id::kGrant},
    {"GROUP", kReserved},
    {"HANDLER", kStmt},
    {"HAVING", kReserved},
    {"HELP", kStmt},
    {"HIGH_PRIORITY", kPrefix},
    {"IF", kPrefix},
    {"IGNORE", kReserved | kPrefix},
    {"ILIKE", kReserved},
    {"IMPORT", kStmt},
    {"IN", kReserved, Id::kIn},
    {"INDEX", 0},
    {"INNER", kReserved},
    {"INSERT", kStmt | kReserved | kMain, Id::kInsert},
    {"INSTALL", kStmt},
    {"INT", 0},
    {"INTEGER", 0},
    {"INTERSECT", kReserved},
    {"INTERVAL", 0},
    {"INTO", kReserved | kPrefix, Id::kInto},
    {"IS", kReserved},
    {"ISNULL", kReserved},
    {"JOIN", kReserved, Id::kJoin},
    {"KEY", 0},
    {"KILL", kStmt},
    {"LATERAL", kReserved, Id::kLateral},
    {"LEFT", kReserved},
    {"LIKE", kReserved},
    {"LIMIT", kReserved},
    {"LISTEN", kStmt},
    {"LOAD", kStmt},
    {"LOCK", kStmt | kReserved},
    {"LOW_PRIORITY", kPrefix},
    {"MATCHED", 0},
    {"MATERIALIZED", 0},
    {"MERGE", kStmt | kMain, Id::kMerge},
    {"MINUS", kReserved},
    {"MOVE", kStmt},
    {"NATURAL", kReserved},
    {"NOT", kReserved | kPrefix},
    {"NOTHING", 0},
    {"NOTIFY", kStmt},
    {"NOTNULL", kReserved},
    {"NOWAIT", 0},
    {"NULL", kReserved},
    {"NULLS", 0},
    {"OFFSET", kReserved},
    {"ON", kReserved},
    {"ONLY", kReserved | kPrefix},
    {"OPTIMIZE", kStmt},
    {"OR", kReserved},
    {"ORDER", kReserved},
    {"OUTER", kReserved},
    {"OUTFILE", kReserved},
    {"OVER", 0},
    {"PARTITION", kReserved},
    {"PREPARE", kStmt},
    {"PRIMARY", kReserved},
    {"PROCEDURE", kReserved},
    {"PURGE", kStmt},
    {"QUICK", kPrefix},
    {"REASSIGN", kStmt},
    {"RECURSIVE", 0, Id::kRecursive},
    {"REFERENCES", kReserved},
    {"REFRESH", kStmt},
    {"REGEXP", kReserved},
    {"REINDEX", kStmt},
    {"RELEASE", kStmt},
    {"RENAME", kStmt},
    {"REPAIR", kStmt},
    {"REPLACE", kStmt, Id::kReplace},
    {"RESET", kStmt},
    {"RESIGNAL", kStmt},
    {"RESTART", kStmt},
    {"RETURNING", kReserved},
    {"REVOKE", kStmt, Id::kRevoke},
    {"RIGHT", kReserved},
    {"RLIKE", kReserved},
    {"ROLLBACK", kStmt},
    {"SAVEPOINT", kStmt},
    {"SECURITY", kStmt},
    {"SELECT", kStmt | kReserved | kMain, Id::kSelect},
    {"SET", kStmt | kReserved},
    {"SHOW", kStmt},
    {"SHUTDOWN", kStmt},
    {"SIGNAL", kStmt},
    {"SIMILAR", kReserved},
    {"SOME", kReserved},
    {"SQL_CALC_FOUND_ROWS", 0},
    {"START", kStmt, Id::kStart},
    {"STDIN", kReserved},
    {"STDOUT", kReserved},
    {"STOP", kStmt},
    {"STRAIGHT_JOIN", kReserved, Id::kStraightJoin},
    {"TABLE", kStmt | kReserved | kPrefix | kMain, Id::kTable},
    {"TABLESAMPLE", kReserved},
    {"TEMP", 0},
    {"TEMPORARY", 0},
    {"THEN", kReserved},
    {"TIMESTAMP", 0},
    {"TO", kReserved},
    {"TRANSACTION", 0, Id::kTransaction},
    {"TRUE", kReserved},
    {"TRUNCATE", kStmt, Id::kTruncate},
    {"UNINSTALL", kStmt},
    {"UNION", kReserved},
    {"UNIQUE", kReserved},
    {"UNLISTEN", kStmt},
    {"UNLOCK", kStmt},
    {"UPDATE", kStmt | kReserved | kMain, Id::kUpdate},
    {"UPSERT", kStmt, Id::kUpsert},
    {"USE", kStmt | kReserved},
    {"USING", kReserved, Id::kUsing},
    {"VACUUM", kStmt},
    {"VALUES", kStmt | kReserved | kMain},
    {"VARCHAR", 0},
    {"VIEW", 0},
    {"WHEN", kReserved},
    {"WHERE", kReserved},
    {"WINDOW", kReserved},
    {"WITH", kStmt | kReserved, Id::kWith},
    {"WORK", 0},
    {"XA", kStmt},
};

constexpr bool KeywordsSorted() {
  for (size_t i = 1; i < std::size(kKeywords); ++i)
    if (!(kKeywords[i - 1].word < kKeywords[i].word)) return false;
  return true;
}
static_assert(KeywordsSorted(), "kKeywords must be sorted and unique");

constexpr size_t kMaxKeywordLen = 24;
static_assert(kMaxNameBytes < 256);

// Byte classes, one table load per test on the lexer's hot loops.
enum CharClass : uint8_t { kAlpha = 1, kDigit = 2, kWord = 4 };
constexpr std::array<uint8_t, 256> kClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    // Identifier characters; bytes >= 0x80 are Unicode letters in both servers.
    const bool word = alpha || digit || c == '_' || c == '$' || c >= 0x80;
    t[c] = (alpha ? kAlpha : 0) | (digit ? kDigit : 0) | (word ? kWord : 0);
  }
  return t;
}();

inline bool IsAlpha(unsigned char c) { return (kClass[c] & kAlpha) != 0; }
inline bool IsDigit(unsigned char c) { return (kClass[c] & kDigit) != 0; }
inline bool IsWordChar(unsigned char c) { return (kClass[c] & kWord) != 0; }
constexpr char Upper(unsigned char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : static_cast<char>(c);
}

// Keyword lookup: open addressing over a power-of-two table built at compile time, FNV-1a of
// the upper-cased word. One hash and usually one comparison per word.
constexpr size_t kHashSlots = 512;
static_assert(std::size(kKeywords) < 255 && std::size(kKeywords) * 2 < kHashSlots);

constexpr uint32_t HashStep(uint32_t h, char c) {
  return (h ^ static_cast<uint8_t>(c)) * 16777619u;
}
constexpr uint32_t kHashSeed = 2166136261u;

constexpr std::array<uint8_t, kHashSlots> kKeywordSlots = [] {
  std::array<uint8_t, kHashSlots> t{};
  for (size_t k = 0; k < std::size(kKeywords); ++k) {
    uint32_t h = kHashSeed;
    for (const char c : kKeywords[k].word) h = HashStep(h, c);
    size_t slot = h & (kHashSlots - 1);
    while (t[slot] != 0) slot = (slot + 1) & (kHashSlots - 1);
    t[slot] = static_cast<uint8_t>(k + 1);
  }
  return t;
}();

const Keyword* Lookup(std::string_view word) {
  if (word.size() > kMaxKeywordLen) return nullptr;
  char buf[kMaxKeywordLen];
  uint32_t h = kHashSeed;
  for (size_t i = 0; i < word.size(); ++i) {
    buf[i] = Upper(static_cast<unsigned char>(word[i]));
    h = HashStep(h, buf[i]);
  }
  const std::string_view up(buf, word.size());
  for (size_t slot = h & (kHashSlots - 1); kKeywordSlots[slot] != 0;
       slot = (slot + 1) & (kHashSlots - 1)) {
    const Keyword& k = kKeywords[kKeywordSlots[slot] - 1];
    if (k.word == up) return &k;
  }
  return nullptr;
}

bool EqualIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (Upper(static_cast<unsigned char>(a[i])) != Upper(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// A run of 13 or more digits (a card number's length) inside a name: identifiers are schema,
// but such a name is more likely a value a client glued to a word; it is never shown.
bool HasLongDigitRun(std::string_view s) {
  size_t run = 0;
  for (const char c : s) {
    run = (c >= '0' && c <= '9') ? run + 1 : 0;
    if (run >= 13) return true;
  }
  return false;
}

// Well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF): identifiers that
// are not land as '?' so the text stays valid for exporters that require UTF-8.
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (n - i < len) return false;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (size_t k = 2; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += len;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Lexer

enum class Kind : uint8_t {
  kWord,     // identifier or keyword, unquoted
  kQuoted,   // "ident" (PostgreSQL), `ident` (MySQL), terminated
  kLiteral,  // any value: string, number, bit/hex string, dollar quote; also anything unclosed
  kParam,    // $1, ?, :name
  kPunct,    // one other printable ASCII byte
};

struct Token {
  Kind kind = Kind::kPunct;
  bool space_before = false;  // whitespace or a comment separated it from the previous token
  bool bad = false;           // identifier that is not valid UTF-8 / has control bytes
  size_t begin = 0;
  size_t end = 0;
};

// Longest $tag$ searched for: bounds the closing-delimiter search to O(n * kMaxDollarTag).
constexpr size_t kMaxDollarTag = 64;

class Lexer {
 public:
  Lexer(std::string_view s, Dialect d) : s_(s), mysql_(d == Dialect::kMysql) {}

  bool Next(Token* t) {
    const size_t n = s_.size();
    bool space = false;
    while (i_ < n) {
      const unsigned char c = At(i_);
      const unsigned char c1 = At(i_ + 1);
      if (c <= 0x20 || c == 0x7f) {  // whitespace, and control bytes taken as separators
        ++i_;
        space = true;
      } else if (c == '-' && c1 == '-' && (!mysql_ || i_ + 2 >= n || At(i_ + 2) <= 0x20)) {
        // MySQL needs whitespace after "--" ("5--3" is 5 minus -3).
        SkipLine(i_ + 2);
        space = true;
      } else if (c == '#' && mysql_) {
        SkipLine(i_ + 1);
        space = true;
      } else if (c == '/' && c1 == '*') {
        SkipBlockComment();
        space = true;
      } else if (mysql_ && in_exec_comment_ && c == '*' && c1 == '/') {
        i_ += 2;
        in_exec_comment_ = false;
        space = true;
      } else {
        break;
      }
    }
    if (i_ >= n) return false;
    t->space_before = space;
    t->bad = false;
    t->begin = i_;
    t->kind = Scan(t);
    t->end = i_;
    return true;
  }

 private:
  unsigned char At(size_t i) const { return i < s_.size() ? static_cast<unsigned char>(s_[i]) : 0; }

  void SkipLine(size_t from) {
    const size_t nl = s_.find('\n', from);
    i_ = nl == std::string_view::npos ? s_.size() : nl + 1;
  }

  void SkipBlockComment() {
    const size_t n = s_.size();
    if (mysql_) {
      // Executable comments run on the server: keep their content as code (version digits
      // dropped); the closing "*/" is skipped when met. Optimizer hints /*+ */ are comments.
      size_t body = 0;
      if (At(i_ + 2) == '!') body = i_ + 3;
      if (At(i_ + 2) == 'M' && At(i_ + 3) == '!') body = i_ + 4;  // MariaDB
      if (body != 0) {
        for (int k = 0; k < 6 && IsDigit(At(body)); ++k) ++body;
        i_ = body;
        in_exec_comment_ = true;
        return;
      }
      const size_t close = s_.find("*/", i_ + 2);
      i_ = close == std::string_view::npos ? n : close + 2;
      return;
    }
    // PostgreSQL comments nest.
    size_t depth = 1;
    size_t j = i_ + 2;
    while (j < n && depth > 0) {
      if (At(j) == '/' && At(j + 1) == '*') {
        ++depth;
        j += 2;
      } else if (At(j) == '*' && At(j + 1) == '/') {
        --depth;
        j += 2;
      } else {
        ++j;
      }
    }
    i_ = std::min(j, n);
  }

  // Moves i_ past a quoted run opened at i_ - 1; returns whether the closing quote was found.
  bool SkipQuoted(char quote, bool backslash) {
    const size_t n = s_.size();
    const size_t open = i_;
    size_t j = i_;
    while (j < n) {
      const char c = s_[j];
      if (backslash && c == '\\') {
        j += 2;
      } else if (c == quote) {
        if (j + 1 < n && s_[j + 1] == quote) {
          j += 2;
        } else if (!backslash && quote == '\'' && j > open && s_[j - 1] == '\\' &&
                   IsWordChar(At(j + 1))) {
          // 'O\'Reilly': a client escaping for standard_conforming_strings=off. Valid SQL never
          // glues a literal to a word, so keep the value inside the literal.
          ++j;
        } else {
          i_ = j + 1;
          return true;
        }
      } else {
        ++j;
      }
    }
    i_ = n;
    return false;
  }

  Kind String(size_t open, bool backslash) {
    i_ = open + 1;
    SkipQuoted(s_[open], backslash);
    return Kind::kLiteral;
  }

  Kind QuotedIdent(size_t open, Token* t) {
    i_ = open + 1;
    if (!SkipQuoted(s_[open], false)) return Kind::kLiteral;  // unclosed: could be anything
    const std::string_view body = s_.substr(open + 1, i_ - open - 2);
    for (const char c : body)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) t->bad = true;
    if (!ValidUtf8(body) || HasLongDigitRun(body)) t->bad = true;
    return Kind::kQuoted;
  }

  Kind Number() {
    const size_t n = s_.size();
    const bool hex = At(i_) == '0' && (At(i_ + 1) | 0x20) == 'x';
    bool dot = false;
    // Letters and digits run on ("1e5", "0x1F", "1_000", MySQL's "123abc"): a token that
    // starts with a digit is a value, whatever follows.
    while (i_ < n) {
      const unsigned char c = At(i_);
      if (IsWordChar(c)) {
        if (!hex && (c | 0x20) == 'e' && (At(i_ + 1) == '+' || At(i_ + 1) == '-')) {
          i_ += 2;
        } else {
          ++i_;
        }
      } else if (c == '.' && !dot && !hex) {
        dot = true;
        ++i_;
      } else {
        break;
      }
    }
    i_ = std::min(i_, n);
    return Kind::kLiteral;
  }

  // PostgreSQL: $n, $$...$$, $tag$...$tag$; a lone '$' is punctuation.
  Kind Dollar() {
    const size_t n = s_.size();
    const size_t start = i_;
    size_t j = start + 1;
    if (IsDigit(At(j))) {
      while (j < n && IsDigit(At(j))) ++j;
      i_ = j;
      return Kind::kParam;
    }
    if (At(j) != '$') {
      const unsigned char c = At(j);
      if (!(IsAlpha(c) || c == '_' || c >= 0x80)) {
        i_ = start + 1;
        return Kind::kPunct;
      }
      while (j < n && (IsWordChar(At(j)) && At(j) != '$')) ++j;
      if (At(j) != '$') {
        i_ = start + 1;
        return Kind::kPunct;
      }
    }
    const std::string_view tag = s_.substr(start, j + 1 - start);
    if (tag.size() > kMaxDollarTag) {
      i_ = n;  // unsearchable: drop the rest rather than risk showing a value
      return Kind::kLiteral;
    }
    const size_t close = s_.find(tag, j + 1);
    i_ = close == std::string_view::npos ? n : close + tag.size();
    return Kind::kLiteral;
  }

  Kind Scan(Token* t) {
    const size_t n = s_.size();
    const size_t i = i_;
    const unsigned char c = At(i);
    const unsigned char c1 = At(i + 1);
    if (c == '\'') return String(i, mysql_);
    if (c == '"') return mysql_ ? String(i, true) : QuotedIdent(i, t);
    if (c == '`' && mysql_) return QuotedIdent(i, t);
    if (IsDigit(c) || (c == '.' && IsDigit(c1))) return Number();
    if (c == '$' && !mysql_) return Dollar();
    if (c == '?') {
      i_ = i + 1;
      return Kind::kParam;
    }
    if (c == ':' && (IsAlpha(c1) || c1 == '_') && (i == 0 || s_[i - 1] != ':')) {
      size_t j = i + 1;
      while (j < n && IsWordChar(At(j))) ++j;
      i_ = j;
      return Kind::kParam;
    }
    if (IsAlpha(c) || c == '_' || c >= 0x80 || (c == '$' && mysql_)) {
      // Prefixed strings: E'..' (PostgreSQL, backslash escapes), B'..', X'..', N'..',
      // U&'..' and U&"..".
      if (c1 == '\'') {
        const unsigned char u = Upper(c);
        if (u == 'E' && !mysql_) return String(i + 1, true);
        if (u == 'B' || u == 'X' || u == 'N') return String(i + 1, mysql_);
      }
      if (!mysql_ && Upper(c) == 'U' && c1 == '&') {
        if (At(i + 2) == '\'') return String(i + 2, false);
        if (At(i + 2) == '"') {
          const Kind k = QuotedIdent(i + 2, t);
          t->bad = true;  // escapes we do not decode: never a name
          return k;
        }
      }
      size_t j = i;
      bool high = false;
      while (j < n && IsWordChar(At(j))) {
        high |= At(j) >= 0x80;
        ++j;
      }
      i_ = j;
      if ((high && !ValidUtf8(s_.substr(i, j - i))) || HasLongDigitRun(s_.substr(i, j - i)))
        t->bad = true;
      return Kind::kWord;
    }
    i_ = i + 1;
    return Kind::kPunct;
  }

  std::string_view s_;
  size_t i_ = 0;
  bool mysql_;
  bool in_exec_comment_ = false;
};

// ---------------------------------------------------------------------------------------------
// Text

class TextWriter {
 public:
  explicit TextWriter(std::string* out) : out_(out) {}
  bool full() const { return full_; }

  void Emit(const Token& t, std::string_view raw, const Keyword* kw) {
    const bool literal = t.kind == Kind::kLiteral;
    const char p = t.kind == Kind::kPunct ? raw[0] : 0;
    // "IN (?, ?, ?)" -> "IN (?)": the commas and items after the first are held back and
    // only written if the list turns out not to be all literals.
    switch (in_) {
      case In::kSawIn:
        in_ = p == '(' ? In::kOpen : In::kNone;
        break;
      case In::kOpen:
        in_ = In::kNone;
        if (literal) {
          Put("?", t.space_before);
          in_ = In::kItem;
          held_ = 0;
          return;
        }
        break;
      case In::kItem:
        if (p == ',') {
          in_ = In::kComma;
          return;
        }
        if (p != ')') Release();
        in_ = In::kNone;
        break;
      case In::kComma:
        if (literal) {
          ++held_;
          in_ = In::kItem;
          return;
        }
        Release();
        Put(",", false);
        in_ = In::kNone;
        break;
      case In::kNone:
        break;
    }
    switch (t.kind) {
      case Kind::kWord:
        Put(t.bad ? "?" : kw != nullptr ? kw->word : raw, t.space_before);
        break;
      case Kind::kQuoted:
        Put(t.bad ? "?" : raw, t.space_before);
        break;
      case Kind::kLiteral:
        Put("?", t.space_before);
        break;
      case Kind::kParam:
        // $n, :name: kept, unless it holds a card-length digit run (fuzz_db: "$3333...").
        Put(HasLongDigitRun(raw) || raw.size() > kMaxNameBytes ? "?" : raw, t.space_before);
        break;
      case Kind::kPunct:
        Put(raw, t.space_before);
        break;
    }
    if (kw != nullptr && kw->id == Id::kIn) in_ = In::kSawIn;
  }

 private:
  enum class In : uint8_t { kNone, kSawIn, kOpen, kItem, kComma };

  void Put(std::string_view piece, bool space) {
    if (full_) return;
    space = space && !out_->empty();
    if (out_->size() + piece.size() + (space ? 1 : 0) > kMaxQueryText) {
      full_ = true;  // cut at this token boundary, for good
      return;
    }
    if (space) out_->push_back(' ');
    out_->append(piece);
  }

  void Release() {
    for (; held_ > 0; --held_) {
      Put(",", false);
      Put("?", true);
    }
  }

  std::string* out_;
  bool full_ = false;
  In in_ = In::kNone;
  size_t held_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Operation and collection

struct Name {
  std::array<char, kMaxNameBytes> buf{};
  uint8_t len = 0;
  std::string_view view() const { return {buf.data(), len}; }
};

class Analyzer {
 public:
  bool done() const { return phase_ == Phase::kDone; }
  bool garbage() const { return garbage_; }
  std::string_view operation() const { return op_; }
  std::string_view collection() const {
    return uncertain_ || tables_ != 1 ? std::string_view() : first_.view();
  }

  void Feed(const Token& t, std::string_view raw, const Keyword* kw) {
    if (phase_ == Phase::kDone) return;
    const char p = t.kind == Kind::kPunct ? raw[0] : 0;
    const Prev prev = prev_;
    prev_ = Prev{kw, p == '('};
    if (phase_ == Phase::kStart) {
      if (p == '(') {
        ++depth_;
        ++base_depth_;
      } else if (p == ';' && depth_ == 0) {
        // an empty statement before the first one
      } else if (kw != nullptr && (kw->flags & kStmt) != 0) {
        StartStatement(*kw);
      } else {
        garbage_ = true;
        phase_ = Phase::kDone;
      }
      return;
    }
    if (p == ';') {
      Finish();
      return;
    }
    if (start_pending_) {
      start_pending_ = false;
      if (Is(kw, Id::kTransaction)) op_ = "BEGIN";
    }
    if (phase_ == Phase::kWith && depth_ == with_depth_ && ctx_ == Ctx::kNone) {
      if (p == ',') {
        cte_expected_ = true;
        return;
      }
      if (kw != nullptr && (kw->flags & kMain) != 0) {
        StartStatement(*kw);
        return;
      }
      if (Is(kw, Id::kRecursive)) return;
      if (cte_expected_ && (t.kind == Kind::kWord || t.kind == Kind::kQuoted)) {
        cte_expected_ = false;
        Name cte;
        bool ok = Append(&cte, t, raw);
        if (ok && ctes_ < ctes_buf_.size()) {
          ctes_buf_[ctes_++] = cte;
        } else {
          uncertain_ = true;
        }
        return;
      }
    }
    if (ctx_ != Ctx::kNone && InTableRef(t, raw, kw, p)) return;
    General(kw, p, prev);
  }

  // End of the first statement (';' or end of input).
  void Finish() {
    if (phase_ == Phase::kStart) garbage_ = true;
    if (phase_ == Phase::kWith) uncertain_ = true;  // the main statement was never seen
    if (ctx_ != Ctx::kNone && ref_ == Ref::kInName) CommitName();
    ctx_ = Ctx::kNone;
    phase_ = Phase::kDone;
  }

 private:
  enum class Phase : uint8_t { kStart, kWith, kBody, kDone };
  struct Prev {
    const Keyword* kw = nullptr;
    bool open = false;  // '('
  };
  // Which kind of table position is open, and where in a table reference we are.
  enum class Ctx : uint8_t { kNone, kFrom, kInto, kUpdate, kDdl, kCopy };
  enum class Ref : uint8_t {
    kExpectName,
    kInName,
    kAfterDot,
    kAfterName,
    kAfterAs,
    kAfterAlias,
    kAliasCols
  };

  static bool Is(const Keyword* kw, Id id) { return kw != nullptr && kw->id == id; }

  static bool IsNameToken(const Token& t, const Keyword* kw) {
    return (t.kind == Kind::kWord && (kw == nullptr || (kw->flags & kReserved) == 0)) ||
           t.kind == Kind::kQuoted;
  }

  void StartStatement(const Keyword& kw) {
    phase_ = Phase::kBody;
    op_ = kw.word;
    op_id_ = kw.id;
    switch (kw.id) {
      case Id::kEnd:
        op_ = "COMMIT";
        break;
      case Id::kAbort:
        op_ = "ROLLBACK";
        break;
      case Id::kAnalyse:
        op_ = "ANALYZE";
        break;
      case Id::kWith:
        phase_ = Phase::kWith;
        with_depth_ = depth_;
        cte_expected_ = true;
        break;
      case Id::kStart:
        start_pending_ = true;
        break;
      case Id::kInsert:
      case Id::kReplace:
      case Id::kUpsert:
        Open(Ctx::kInto);  // MySQL's INTO is optional
        break;
      case Id::kSelect:
      case Id::kDelete:
        SetFromAllowed(true);
        break;
      case Id::kUpdate:
        SetFromAllowed(true);
        Open(Ctx::kUpdate);
        break;
      case Id::kTruncate:
      case Id::kTable:
        Open(Ctx::kDdl);
        break;
      case Id::kCopy:
        Open(Ctx::kCopy);
        break;
      default:
        break;
    }
  }

  void General(const Keyword* kw, char p, Prev prev) {
    if (p == '(') {
      ++depth_;
      SetFromAllowed(false);
      return;
    }
    if (p == ')') {
      if (depth_ > 0) --depth_;
      if (ctx_ != Ctx::kNone && depth_ < ctx_depth_) ctx_ = Ctx::kNone;
      return;
    }
    if (kw == nullptr) return;
    switch (kw->id) {
      case Id::kSelect:
      case Id::kDelete:
      case Id::kUpdate:
        SetFromAllowed(true);
        break;
      case Id::kFrom:
        // Only the FROM of a SELECT/DELETE/UPDATE at this depth: not EXTRACT(x FROM y),
        // SUBSTRING(s FROM 2), IS DISTINCT FROM, COPY t FROM, REVOKE ... FROM role.
        if (FromAllowed() && !Is(prev.kw, Id::kDistinct) && op_id_ != Id::kGrant &&
            op_id_ != Id::kRevoke)
          Open(Ctx::kFrom);
        break;
      case Id::kStraightJoin:  // also a SELECT modifier
        if (!Is(prev.kw, Id::kSelect)) Open(Ctx::kFrom);
        break;
      case Id::kJoin:
        Open(Ctx::kFrom);
        break;
      case Id::kInto:
        Open(Ctx::kInto);
        break;
      case Id::kTable:
        Open(Ctx::kDdl);
        break;
      case Id::kUsing:
        if (depth_ == base_depth_ && (op_id_ == Id::kDelete || op_id_ == Id::kMerge))
          Open(Ctx::kFrom);
        break;
      case Id::kWith:
        if (prev.open) uncertain_ = true;  // CTEs inside a subquery: names not tracked
        break;
      default:
        break;
    }
  }

  // One bit per parenthesis depth: a SELECT/DELETE/UPDATE keyword was seen there, so a FROM
  // at that depth names tables. Deeper than 64 levels FROM is never a table position.
  void SetFromAllowed(bool on) {
    if (depth_ >= 64) return;
    const uint64_t bit = uint64_t{1} << depth_;
    from_allowed_ = on ? from_allowed_ | bit : from_allowed_ & ~bit;
  }
  bool FromAllowed() const { return depth_ < 64 && (from_allowed_ >> depth_ & 1) != 0; }

  void Open(Ctx c) {
    ctx_ = c;
    ctx_depth_ = depth_;
    ref_ = Ref::kExpectName;
  }

  bool ListContext() const {
    return ctx_ == Ctx::kFrom || ctx_ == Ctx::kUpdate || ctx_ == Ctx::kDdl;
  }

  // Returns true when the token was consumed as part of a table reference; false hands it to
  // General() (the reference, if any, is over).
  bool InTableRef(const Token& t, std::string_view raw, const Keyword* kw, char p) {
    switch (ref_) {
      case Ref::kExpectName:
        if (kw != nullptr && (kw->flags & kPrefix) != 0) return true;
        if (p == '(' || Is(kw, Id::kLateral)) {
          // A subquery, a parenthesised join, LATERAL: not one plain table. For INTO/DDL a
          // '(' here is not SQL we understand either; leave the table unknown.
          uncertain_ = true;
          ctx_ = Ctx::kNone;
          return kw != nullptr;
        }
        if (IsNameToken(t, kw)) {
          name_ = Name{};
          name_ok_ = Append(&name_, t, raw);
          name_parts_ = 1;
          ref_ = Ref::kInName;
          return true;
        }
        ctx_ = Ctx::kNone;
        return false;
      case Ref::kInName:
        if (p == '.') {
          name_ok_ = name_ok_ && AppendByte(&name_, '.');
          ref_ = Ref::kAfterDot;
          return true;
        }
        if (p == '(' && ctx_ == Ctx::kFrom) {
          uncertain_ = true;  // a table function
          ctx_ = Ctx::kNone;
          return false;
        }
        CommitName();
        ref_ = Ref::kAfterName;
        return AfterName(t, kw, p);
      case Ref::kAfterDot:
        if (t.kind == Kind::kWord || t.kind == Kind::kQuoted) {
          name_ok_ = name_ok_ && Append(&name_, t, raw);
          ++name_parts_;
          ref_ = Ref::kInName;
          return true;
        }
        uncertain_ = true;  // "s.*", "s.(": not a name
        ctx_ = Ctx::kNone;
        return false;
      case Ref::kAfterName:
        return AfterName(t, kw, p);
      case Ref::kAfterAs:
        if (IsNameToken(t, kw)) {
          ref_ = Ref::kAfterAlias;
          return true;
        }
        ctx_ = Ctx::kNone;
        return false;
      case Ref::kAfterAlias:
        if (p == '(') {
          ref_ = Ref::kAliasCols;  // "t AS x(a, b)"; General() counts the depth
          return false;
        }
        return AfterAlias(p);
      case Ref::kAliasCols:
        if (depth_ > ctx_depth_) return false;
        return AfterAlias(p);
    }
    return false;
  }

  bool AfterName(const Token& t, const Keyword* kw, char p) {
    if (Is(kw, Id::kAs)) {
      ref_ = Ref::kAfterAs;
      return true;
    }
    if (IsNameToken(t, kw)) {
      ref_ = Ref::kAfterAlias;
      return true;
    }
    return AfterAlias(p);
  }

  bool AfterAlias(char p) {
    if (p == ',' && ListContext()) {
      ref_ = Ref::kExpectName;
      return true;
    }
    ctx_ = Ctx::kNone;
    return false;
  }

  void CommitName() {
    if (!name_ok_ || name_.len == 0) {
      uncertain_ = true;
      return;
    }
    if (name_parts_ == 1) {
      for (size_t i = 0; i < ctes_; ++i)
        if (EqualIgnoreCase(ctes_buf_[i].view(), name_.view())) return;  // a CTE, not a table
    }
    if (tables_ == 0) {
      first_ = name_;
      tables_ = 1;
    } else if (!EqualIgnoreCase(first_.view(), name_.view())) {
      tables_ = 2;
    }
  }

  static bool AppendByte(Name* n, char c) {
    if (n->len >= kMaxNameBytes) return false;
    n->buf[n->len++] = c;
    return true;
  }

  // A name part: unquoted words are limited to [A-Za-z0-9_$]; quoted ones give their content.
  static bool Append(Name* n, const Token& t, std::string_view raw) {
    if (t.bad) return false;
    if (t.kind == Kind::kWord) {
      for (const char c : raw) {
        const auto u = static_cast<unsigned char>(c);
        if (!(IsAlpha(u) || IsDigit(u) || u == '_' || u == '$')) return false;
        if (!AppendByte(n, c)) return false;
      }
      return true;
    }
    if (t.kind != Kind::kQuoted || raw.size() < 3) return false;  // "" is not a name
    const char q = raw[0];
    const std::string_view body = raw.substr(1, raw.size() - 2);
    for (size_t i = 0; i < body.size(); ++i) {
      if (body[i] == q && i + 1 < body.size()) ++i;  // a doubled quote stands for one
      if (!AppendByte(n, body[i])) return false;
    }
    return true;
  }

  Phase phase_ = Phase::kStart;
  bool garbage_ = false;
  std::string_view op_;  // points into kKeywords or a literal
  Id op_id_ = Id::kNone;
  bool start_pending_ = false;
  Prev prev_;
  size_t depth_ = 0;
  uint64_t from_allowed_ = 0;
  size_t base_depth_ = 0;  // leading '(' of "(SELECT ...) UNION ..."

  size_t with_depth_ = 0;
  bool cte_expected_ = false;
  std::array<Name, 8> ctes_buf_;
  size_t ctes_ = 0;

  Ctx ctx_ = Ctx::kNone;
  size_t ctx_depth_ = 0;
  Ref ref_ = Ref::kExpectName;
  Name name_;
  bool name_ok_ = false;
  size_t name_parts_ = 0;

  Name first_;
  int tables_ = 0;
  bool uncertain_ = false;  // something in a table position that is not a plain table
};

}  // namespace

Summary Summarize(std::string_view statement, Dialect dialect) {
  Summary out;
  Lexer lexer(statement, dialect);
  Analyzer analyzer;
  TextWriter writer(&out.text);
  out.text.reserve(std::min(statement.size() + 8, kMaxQueryText));
  Token t;
  bool after_dot = false;
  while (lexer.Next(&t)) {
    const std::string_view raw = statement.substr(t.begin, t.end - t.begin);
    // After '.', a word is a column or table part, never a keyword ("t.key", "s.order").
    const Keyword* kw = t.kind == Kind::kWord && !t.bad && !after_dot ? Lookup(raw) : nullptr;
    after_dot = t.kind == Kind::kPunct && raw[0] == '.';
    analyzer.Feed(t, raw, kw);
    if (analyzer.garbage()) return Summary{};
    writer.Emit(t, raw, kw);
    if (writer.full() && analyzer.done()) break;
  }
  analyzer.Finish();
  if (analyzer.garbage() || analyzer.operation().empty()) return Summary{};
  out.operation.assign(analyzer.operation());
  out.collection.assign(analyzer.collection());
  out.summary = out.operation;
  if (!out.collection.empty() && out.summary.size() + 1 + out.collection.size() <= kMaxSummary) {
    out.summary.push_back(' ');
    out.summary.append(out.collection);
  }
  return out;
}

}  // namespace redtap::db::sql
