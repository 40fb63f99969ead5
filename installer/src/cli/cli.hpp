#pragma once
/// The command-line interface: the only part of leo-installer that writes to the terminal.

namespace leo::cli {

/// Parse `argv`, run the command, print errors as "leo-installer: error: <chain>" and
/// return the documented exit code (DESIGN.md: 0 ok, 1 error, 2 usage, 3 refused).
int main(int argc, char** argv);

} // namespace leo::cli
