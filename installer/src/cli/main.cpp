// leo-installer: the installer, upgrader and lifecycle tool of the connection broker.
#include "cli.hpp"

int main(int argc, char** argv) { return leo::cli::main(argc, argv); }
