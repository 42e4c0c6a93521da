// SPDX-License-Identifier: Apache-2.0
// Names of plain (non-Kubernetes) containers, from the state files the runtimes keep on the
// host. Pure parsers: the caller reads the files. Ids are the 64-hex ids cgroup.h finds.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

namespace redtap::metadata {

/// containers/storage (podman, buildah, CRI-O):
/// /var/lib/containers/storage/overlay-containers/containers.json, an array of
/// {"id", "names": [...], ...}. Replaces *id_to_name with id → first name and returns true;
/// entries without a 64-hex id or a non-empty first name are left out, and so is every entry
/// past max_entries. False with *error (may be null) on malformed JSON or when the document
/// is not an array; *id_to_name is then left alone.
bool ParseContainersStorageJson(std::string_view json,
                                std::unordered_map<std::string, std::string>* id_to_name,
                                std::string* error, size_t max_entries = 8192) noexcept;

/// docker: /var/lib/docker/containers/<id>/config.v2.json → its "Name" without the leading
/// "/" ("/shop" → "shop"); "" when malformed or absent.
std::string ParseDockerConfigV2Name(std::string_view json) noexcept;

}  // namespace redtap::metadata
