// SPDX-License-Identifier: Apache-2.0
// What a SQL statement is, without any value in it: its operation, its single table, and its
// text with every literal replaced by '?'. Shared by the PostgreSQL and MySQL parsers.
//
// Decisions a caller may rely on:
// - text: literals (strings of every kind, numbers, hex/bit strings, dollar quotes) become '?',
//   an unterminated literal or quoted identifier becomes '?' and ends the text; comments are
//   dropped (MySQL's executable comments /*! ... */ and /*M! ... */ are kept as code, since the
//   server runs them); whitespace folds to one space where the input had any; keywords are
//   upper-cased, identifiers and placeholders ($1, ?, :name) kept as written; "-5" becomes "-?";
//   an IN list made only of literals collapses to "IN (?)". Every statement of a multi-statement
//   string is kept, the whole cut at a token boundary to at most kMaxQueryText bytes.
// - operation: the first keyword of the first statement, upper case, after leading '(' and ';'.
//   Synonyms fold: END -> COMMIT, ABORT -> ROLLBACK, START TRANSACTION -> BEGIN,
//   ANALYSE -> ANALYZE. WITH ... returns the keyword of the statement after the CTEs ("WITH"
//   when it was not seen, e.g. a truncated capture). A first word that is not a known statement
//   keyword means "not SQL": then the whole Summary is empty, text included.
// - collection: the one distinct table named in a table position (FROM, JOIN, INTO, UPDATE,
//   TABLE, TRUNCATE, COPY, USING of DELETE/MERGE) of the first statement; CTE names are not
//   tables (the tables their bodies read are). "" when there are none or several, when a table
//   position holds a subquery, a table function or LATERAL, when a WITH is nested in a
//   subquery, or when a name is not plain ([A-Za-z0-9_$], quoted identifiers as their content,
//   parts joined by '.') or is longer than kMaxNameBytes. At most 8 CTE names are tracked.
// - Dialect assumptions (the servers' defaults): MySQL "..." is a string (not ANSI_QUOTES) and
//   backslash escapes in strings (not NO_BACKSLASH_ESCAPES); PostgreSQL '...' has no backslash
//   escapes (standard_conforming_strings=on) except that \' directly followed by a letter or
//   digit stays inside the literal, so a client escaping for the old setting leaks nothing.
//   A $tag$ longer than 64 bytes is taken as a literal running to the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace redtap::db::sql {

enum class Dialect : uint8_t { kPostgresql, kMysql };

struct Summary {
  std::string operation;   // upper-case first keyword ("SELECT", "INSERT", ...); "" if none
  std::string collection;  // the one table the statement names; "" when none or several
  std::string text;        // literals -> '?', comments removed, whitespace folded, bounded
  std::string summary;     // "{operation} {collection}" or "{operation}"
};

/// Summarises one statement (or the first of several separated by ';'). Never throws;
/// garbage yields an empty operation.
Summary Summarize(std::string_view statement, Dialect dialect);

}  // namespace redtap::db::sql
