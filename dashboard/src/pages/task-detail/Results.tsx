import { number } from '../../format.ts';
import type { DetailTask } from '../TaskDetail.tsx';
import { DateText } from './Summary.tsx';

const bytes = new Intl.NumberFormat('en', { style: 'unit', unit: 'byte', unitDisplay: 'long' });

/** Metadata only: reading a payload is retrieveResults, which hands it over once. */
export function Results({ task }: { task: DetailTask }) {
  return (
    <section aria-labelledby="task-results-heading">
      <h2 id="task-results-heading">Results</h2>
      <p className="hint">Payloads are not shown here: a result is retrieved once, with retrieveResults, by its client.</p>
      {task.results.length === 0 ? (
        <p>{task.dateCompleted ? 'No results.' : 'No results yet.'}</p>
      ) : (
        <div className="scroll" tabIndex={0} role="region" aria-label="Result metadata">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Content type</th>
                <th scope="col" className="num">
                  Size
                </th>
                <th scope="col">Created</th>
                <th scope="col">Retrieved</th>
              </tr>
            </thead>
            <tbody>
              {task.results.map((result) => (
                <tr key={result.id}>
                  <td>{result.name}</td>
                  <td>{result.contentType}</td>
                  <td className="num" title={`${number.format(result.size)} bytes`}>
                    {bytes.format(result.size)}
                  </td>
                  <td>
                    <DateText iso={result.dateCreated} />
                  </td>
                  <td>{result.retrieved ? 'Yes' : 'Not yet'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
