import { graphql } from '../gql/index.ts';

export const tasksQuery = graphql(`
  query Tasks($filter: TaskFilter, $first: Int, $after: String) {
    tasks(filter: $filter, first: $first, after: $after) {
      edges {
        node {
          id
          state
        }
      }
    }
  }
`);

export function Tasks() {
  return <h1>Tasks</h1>;
}
