// leo-test-httpd DOCROOT: serve DOCROOT over HTTP on 127.0.0.1 (an ephemeral port) until
// SIGTERM or SIGINT; prints the URL on its first line. Used by scripts/demo.sh to serve a
// yum repository on loopback (the tests use leo::test::HttpServer directly).
#include "http_server.hpp"

#include <csignal>
#include <iostream>

#include <unistd.h>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: leo-test-httpd DOCROOT\n";
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the server thread starts
    leo::test::HttpServer server(argv[1]);
    std::cout << server.url() << std::endl;
    int sig = 0;
    sigwait(&set, &sig);
    return 0;
}
