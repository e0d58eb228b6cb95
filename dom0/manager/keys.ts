import { QUBES_MEMINFO_KEY, REPORT_KEY, XAPI_MEMINFO_FREE_KEY, XAPI_MEMINFO_TOTAL_KEY } from '../../src/schemas/report.js';

/** Absolute xenstore paths the manager reads, writes and watches for one domain. */
export const domPath = (domid: number) => `/local/domain/${domid}`;

export const keys = (domid: number) => {
  const home = domPath(domid);
  return {
    home,
    report: `${home}/${REPORT_KEY}`,
    qubes: `${home}/${QUBES_MEMINFO_KEY}`,
    qubesSwap: `${home}/memory/swapinfo`,
    xapiFree: `${home}/${XAPI_MEMINFO_FREE_KEY}`,
    xapiTotal: `${home}/${XAPI_MEMINFO_TOTAL_KEY}`,
    target: `${home}/memory/target`,
    staticMax: `${home}/memory/static-max`,
    hotplugMax: `${home}/memory/hotplug-max`,
    /** xmem's own copy of the domain's original ceiling: `xl mem-max` rewrites static-max. */
    xmemStaticMax: `${home}/memory/xmem-static-max`,
  };
};
