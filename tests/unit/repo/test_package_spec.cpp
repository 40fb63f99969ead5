// yum's package specs (exclude=, includepkgs=) against the forms of a NEVRA.
#include "leo/repo/package_spec.hpp"

#include <gtest/gtest.h>

namespace {

leo::repo::PackageEntry entry(std::uint32_t epoch, const std::string& version) {
    leo::repo::PackageEntry e;
    e.name = "leostream-broker";
    e.arch = "x86_64";
    e.epoch = epoch;
    e.version = version;
    e.release = "1";
    return e;
}

TEST(PackageSpec, EveryFormYumComparesWith) {
    const auto e = entry(0, "9.2.0");
    for (const std::string spec :
         {"leostream-broker", "leostream-broker.x86_64", "leostream-broker-9.2.0", "leostream-broker-9.2.0-1",
          "leostream-broker-9.2.0-1.x86_64", "0:leostream-broker-9.2.0-1.x86_64", "leostream-broker-0:9.2.0-1.x86_64",
          "leostream-*", "leostream-broker-9.2*", "*-9.2.0-1.*", "leostream-broker-9.[0-2].0", "?eostream-broker"})
        EXPECT_TRUE(leo::repo::package_matches(e, spec)) << spec;
    for (const std::string spec : {"leostream", "leostream-broker-9.2", "leostream-broker-9.1*", "Leostream-broker",
                                   "leostream-broker.noarch", "1:leostream-broker-9.2.0-1.x86_64", "9.2.0"})
        EXPECT_FALSE(leo::repo::package_matches(e, spec)) << spec;
    EXPECT_TRUE(leo::repo::package_matches(entry(1, "9.0.1"), "leostream-broker-1:9.0.1-1.x86_64"));
    EXPECT_TRUE(leo::repo::package_matches(entry(0, "9.2.0~rc1"), "leostream-broker-9.2.0*"));
}

TEST(PackageSpec, FirstMatchNamesTheSpec) {
    const std::vector<std::string> specs{"other", "leostream-broker-9.2*", "leostream-*"};
    const std::string* m = leo::repo::first_match(specs, entry(0, "9.2.0"));
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(*m, "leostream-broker-9.2*");
    EXPECT_EQ(leo::repo::first_match({"a", "b"}, entry(0, "9.2.0")), nullptr);
}

} // namespace
