// The .repo file a test machine drops into /etc/yum.repos.d/, written beside the repository on
// every publish so it always matches how the repository is signed.
import type { UrlRules } from '../input/urls.js';
import { PUBLIC_KEY_FILE, REPO_FILE } from './snapshot.js';

/**
 * What a base URL of ost-images.repo must be: a URL dnf fetches, one word (the file lists several
 * on one line, separated by spaces), and no password (the file is served to anyone).
 */
export const BASE_URL: UrlRules = { schemes: ['http', 'https', 'ftp', 'file'], secretsEndUpIn: 'ost-images.repo, which the repository serves to anyone' };

/**
 * `baseUrl`: one URL, or several separated by whitespace (the repository and its mirrors, in the
 * order dnf is to try them). dnf reads `baseurl` as a list and tries its URLs in that order for every
 * file, metadata and packages alike (dnf.conf(5): "URLs are tried in the listed order"): a dead
 * host costs one failed connection, not the install. They are written on one line, so that publish,
 * which reads the last `baseurl=` line back when no --url is given, keeps all of them.
 */
export function renderRepoFile(baseUrl: string, signed: boolean): string {
  const urls = baseUrl
    .split(/\s+/)
    .filter(Boolean)
    .map((u) => u.replace(/\/?$/, '/'));
  const url = urls[0]!;
  return [
    '# Written by `ost-images publish`. On a test machine:',
    `#   curl -fo /etc/yum.repos.d/${REPO_FILE} ${url}${REPO_FILE}`,
    '#   dnf install ost-images-engine-installed      # or any layer: its chain comes along',
    '# Layer packages are install-only: `dnf upgrade` installs new builds beside the old ones, so',
    '# VMs on overlays of an older chain keep their backing files. Remove old builds with',
    '# `ost-images remove-old`, which keeps every chain a running VM has open.',
    ...(urls.length > 1 ? ['# baseurl lists the repository and its mirrors: dnf tries them in this order.'] : []),
    '[ost-images]',
    'name=ost-images: layered VM images',
    `baseurl=${urls.join(' ')}`,
    'enabled=1',
    // The nightly publishes once a day; an hour keeps clients from working on yesterday's metadata.
    'metadata_expire=1h',
    ...(signed
      ? [
          // dnf fetches every gpgkey URL in turn and stops at the first that fails (it does not fail
          // over as for baseurl): one key URL, and a machine that imported the key once needs none.
          ...(urls.length > 1 ? [`# The key is fetched from the first URL only; where it may be down, import it once: rpm --import <any mirror>/${PUBLIC_KEY_FILE}`] : []),
          'gpgcheck=1',
          'repo_gpgcheck=1',
          `gpgkey=${url}${PUBLIC_KEY_FILE}`,
        ]
      : ['# This repository is not signed (published without --sign-key).', 'gpgcheck=0', 'repo_gpgcheck=0']),
    '',
  ].join('\n');
}
