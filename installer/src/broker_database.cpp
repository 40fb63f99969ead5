#include "leo/installer/broker_database.hpp"

#include "leo/installer/database_config.hpp"
#include "leo/migrations/internal_db.hpp"

#include <fmt/format.h>

namespace leo::installer {

BrokerDatabaseTarget broker_database_target(const std::filesystem::path& root,
                                            const std::function<void(const std::string&)>& notice) {
    BrokerDatabaseTarget out;
    const auto config = load_database_config(root);
    out.site_id = config.site_id;
    if (config.mode == DatabaseMode::external) {
        out.external = true;
        out.conninfo = external_conninfo(config);
        out.endpoint = config.external.display();
        const auto& e = config.external;
        out.name = fmt::format("{}@{}:{}/{}", e.username, e.host, e.port, e.dbname);
        return out;
    }
    migrations::InternalDatabase db(root);
    if (db.status().state != migrations::DbState::running)
        db.start([&notice](const std::string& line) {
            if (notice) notice(line);
        });
    out.conninfo = db.conninfo();
    out.endpoint = "the internal database";
    out.name = "leo";
    return out;
}

} // namespace leo::installer
