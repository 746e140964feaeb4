// What runs inside the guest, per distribution family, as argv arrays. Pure: both backends and
// the tests read the same commands.
import type { DistroFamily } from '../definitions/types.js';

export interface GuestCommands {
  refresh: string[];
  install(packages: string[]): string[];
  /** Installs package files already in the guest (absolute paths), with their dependencies from the repositories. */
  installLocal(paths: string[]): string[];
  upgrade: string[];
  /** Removes package caches and index files so the layer does not carry them. */
  clean: string[][];
  /** Installed packages, one "name version" per line (used for package diffs). */
  listInstalled: string[];
}

const APT = ['apt-get', '-o', 'Acquire::Retries=3', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold'];

export function guestCommands(family: DistroFamily): GuestCommands {
  if (family === 'debian') {
    return {
      refresh: [...APT, 'update'],
      install: (pkgs) => [...APT, 'install', '-y', '--no-install-recommends', ...pkgs],
      installLocal: (paths) => [...APT, 'install', '-y', '--no-install-recommends', ...paths],
      upgrade: [...APT, 'dist-upgrade', '-y'],
      clean: [
        ['apt-get', 'clean'],
        ['find', '/var/lib/apt/lists', '-type', 'f', '-exec', 'rm', '-f', '{}', '+'],
      ],
      listInstalled: ['dpkg-query', '-W', '-f', '${Package} ${Version}\\n'],
    };
  }
  return {
    refresh: ['dnf', '-y', 'makecache'],
    install: (pkgs) => ['dnf', '-y', '--setopt=install_weak_deps=False', 'install', ...pkgs],
    installLocal: (paths) => ['dnf', '-y', '--setopt=install_weak_deps=False', 'install', ...paths],
    upgrade: ['dnf', '-y', 'upgrade'],
    clean: [['dnf', 'clean', 'all']],
    listInstalled: ['rpm', '-qa', '--qf', '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n'],
  };
}
