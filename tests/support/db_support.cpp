#include "test_support.hpp"

#include "leo/migrations/connection.hpp"
#include "leo/migrations/db_snapshot.hpp"
#include "leo/migrations/internal_db.hpp"

namespace leo::test {

std::string table_checksums(const std::filesystem::path& root) {
    migrations::InternalDatabase db(root);
    auto conn = migrations::Connection::open(db.conninfo());
    std::string out;
    for (const auto& [table, sum] : migrations::table_checksums(conn)) out += table + "=" + sum + "\n";
    return out;
}

} // namespace leo::test
