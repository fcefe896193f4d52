import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** A ThroughputBucket of the API. */
interface Bucket {
  start: string;
  succeeded: number;
  failed: number;
  cancelled: number;
}

// Each series is told apart by its name in the legend and by its stroke pattern, not by colour alone.
const SERIES: ReadonlyArray<{ label: string; field: 'succeeded' | 'failed' | 'cancelled'; stroke: string; dash?: number[] }> = [
  { label: 'Succeeded', field: 'succeeded', stroke: '#1a7f37' },
  { label: 'Failed', field: 'failed', stroke: '#cf222e', dash: [6, 4] },
  { label: 'Cancelled', field: 'cancelled', stroke: '#6e7781', dash: [2, 3] },
];

const HEIGHT = 180;

function toData(buckets: readonly Bucket[]): uPlot.AlignedData {
  return [
    buckets.map((bucket) => Date.parse(bucket.start) / 1000),
    ...SERIES.map(({ field }) => buckets.map((bucket) => bucket[field])),
  ];
}

/** Tasks ended per bucket, by how they ended; uPlot draws on a canvas, so the caption carries the totals in text. */
export function ThroughputChart({ buckets, bucketSeconds }: { buckets: readonly Bucket[]; bucketSeconds: number }) {
  const holder = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);

  useEffect(() => {
    const element = holder.current;
    if (!element) return;
    const plot = new uPlot(
      {
        width: element.clientWidth || 600,
        height: HEIGHT,
        scales: { y: { range: (_plot, _min, max) => [0, Math.max(1, max)] } },
        axes: [{}, { label: `per ${bucketSeconds} s`, size: 50 }],
        series: [{}, ...SERIES.map(({ label, stroke, dash }) => ({ label, stroke, dash, width: 2, points: { show: false } }))],
      },
      toData([]),
      element,
    );
    chart.current = plot;
    const resize = new ResizeObserver(() => plot.setSize({ width: element.clientWidth, height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
      chart.current = null;
    };
  }, [bucketSeconds]);

  useEffect(() => {
    chart.current?.setData(toData(buckets));
  }, [buckets]);

  return <div ref={holder} className="chart" aria-hidden="true" />;
}
