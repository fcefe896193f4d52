import { createContext, useContext } from 'react';
import type { ViewerQuery } from './gql/graphql.ts';

export type Viewer = ViewerQuery['viewer'];

export const ViewerContext = createContext<Viewer | null>(null);

/** The signed-in key's viewer; only pages under the signed-in shell call it. */
export function useViewer(): Viewer {
  const viewer = useContext(ViewerContext);
  if (viewer === null) throw new Error('useViewer outside the signed-in shell');
  return viewer;
}
