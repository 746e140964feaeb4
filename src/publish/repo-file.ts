// The .repo file a test machine drops into /etc/yum.repos.d/, written beside the repository on
// every publish so it always matches how the repository is signed.
import { PUBLIC_KEY_FILE, REPO_FILE } from './snapshot.js';

export function renderRepoFile(baseUrl: string, signed: boolean): string {
  const url = baseUrl.replace(/\/?$/, '/');
  return [
    '# Written by `ost-images publish`. On a test machine:',
    `#   curl -fo /etc/yum.repos.d/${REPO_FILE} ${url}${REPO_FILE}`,
    '#   dnf install ost-images-engine-installed      # or any layer: its chain comes along',
    '# Layer packages are install-only: `dnf upgrade` installs new builds beside the old ones, so',
    '# VMs on overlays of an older chain keep their backing files. Remove old builds with',
    '# `ost-images remove-old`, which keeps every chain a running VM has open.',
    '[ost-images]',
    'name=ost-images: layered VM images',
    `baseurl=${url}`,
    'enabled=1',
    // The nightly publishes once a day; an hour keeps clients from working on yesterday's metadata.
    'metadata_expire=1h',
    ...(signed
      ? ['gpgcheck=1', 'repo_gpgcheck=1', `gpgkey=${url}${PUBLIC_KEY_FILE}`]
      : ['# This repository is not signed (published without --sign-key).', 'gpgcheck=0', 'repo_gpgcheck=0']),
    '',
  ].join('\n');
}
