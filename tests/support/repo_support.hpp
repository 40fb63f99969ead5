#pragma once
/// Helpers of the leo::repo tests (unit and integration): repository configurations made
/// in the test, the message of a refused call, listings of what a call left on disk, and
/// the `.repo` files of a sandbox root.

#include "leo/repo/config.hpp"
#include "leo/repo/metadata.hpp"

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace leo::test {

/// A repository `id` (name = id) with `baseurls`, as if read from /etc/yum.repos.d/test.repo;
/// every other setting is RepoConfig's default (yum's).
repo::RepoConfig repo_config(const std::string& id, std::vector<std::string> baseurls);

/// Passes when `text` contains `part`; the failure shows both.
::testing::AssertionResult Contains(const std::string& text, const std::string& part);

/// The message of the leo::RepoError `f` throws; fails the test (and returns "") when it
/// throws nothing. Any other exception goes through.
std::string repo_error(const std::function<void()>& f);

/// Every path under `dir` relative to it, recursively, sorted (empty when `dir` does not exist).
std::vector<std::string> list_dir(const std::filesystem::path& dir);

/// The first package of `md` named `name`; throws std::runtime_error when there is none.
const repo::PackageEntry& find_package(const repo::Metadata& md, const std::string& name);

/// An http URL on 127.0.0.1 where nothing listens ("http://127.0.0.1:PORT", see free_port()).
std::string closed_port_url();

/// Writes ROOT/etc/yum.repos.d/ID.repo (directories made, any such file replaced): the
/// section header "[ID]" then `lines` ("key=value\n" each) as given.
void write_repo_file(const std::filesystem::path& root, const std::string& id, const std::string& lines);

/// The lines of a section for the signed test packages (test_packages_dir()): "name=Broker
/// NAME_SUFFIX" ("name=Broker" when empty), "baseurl=BASEURL" when not empty, enabled=1,
/// gpgcheck=1 (0 with `gpgcheck` false) and gpgkey= the test key copied into the root
/// (key_in_root), in that order.
std::string signed_repo_lines(const std::filesystem::path& root, const std::string& baseurl,
                              const std::string& name_suffix = {}, bool gpgcheck = true);

} // namespace leo::test
