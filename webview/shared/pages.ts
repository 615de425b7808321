/**
 * Page images in the panels that show corpus pages (search, inspector): the key a thumbnail is
 * kept under, and the page opened large, both built from the host's `image` message.
 */

/** A page of the corpus as the protocols name it: a file name and a page number. */
export interface PageName {
  file: string;
  page: number;
}

/** A page opened large: its image and the label shown above it (text only). */
export interface LargePage {
  key: string;
  uri: string;
  width: number;
  height: number;
  label: string;
}

/** The key a page's thumbnail is kept under. */
export function pageKey(page: PageName): string {
  return `${page.file}#${page.page}`;
}

/** The page an `image` message opens large. */
export function largePage(msg: { page: PageName; uri: string; width: number; height: number }): LargePage {
  return {
    key: pageKey(msg.page),
    uri: msg.uri,
    width: msg.width,
    height: msg.height,
    label: `${msg.page.file} p.${msg.page.page}`,
  };
}
