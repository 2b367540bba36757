/**
 * Calls to eiq-lab's Jupyter server extension (eiq_lab/jupyter): the notebooks the buttons open, and the
 * SavedModel folders of a directory.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The notebooks the server writes from the templates in the Python package (eiq_lab/jupyter/notebooks.py). */
export type NotebookKind = 'home' | 'portal' | 'modeltool' | 'plugins';

/** The server's answer: the notebook's contents path, and whether it was written just now. */
export interface INotebookReply {
  path: string;
  created: boolean;
}

/** Model files the Model Tool opens (a SavedModel is a folder holding saved_model.pb). */
export const MODEL_EXTENSIONS = ['.tflite', '.onnx', '.h5', '.keras', '.pb'];
export const SAVED_MODEL_FILE = 'saved_model.pb';

/** Whether a file name is one of the model files the Model Tool opens. */
export function isModelFile(name: string): boolean {
  const lower = name.toLowerCase();
  return MODEL_EXTENSIONS.some(extension => lower.endsWith(extension));
}

async function request<T>(endpoint: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'eiq-lab', endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!response.ok) {
    if (response.status === 404 && data === undefined) {
      throw new Error(
        "eiq-lab's Jupyter server extension is not enabled: run " +
          '`jupyter server extension enable eiq_lab.jupyter` and restart JupyterLab.'
      );
    }
    throw new Error(data?.message || `${response.status} ${response.statusText}`);
  }
  return data as T;
}

/**
 * Ask the server for the notebook of `kind` (written from its template if it is not there yet).
 *
 * @param directory - the folder of a new project notebook (the file browser's folder).
 * @param model - the model file or SavedModel folder a Model Tool notebook opens.
 */
export function notebookFor(
  kind: NotebookKind,
  options: { directory?: string; model?: string } = {}
): Promise<INotebookReply> {
  return request<INotebookReply>('notebooks', {
    method: 'POST',
    body: JSON.stringify({ kind, ...options })
  });
}

/** The SavedModel folders directly inside `directory` (contents paths). */
export async function savedModelsIn(directory: string): Promise<string[]> {
  const query = URLExt.objectToQueryString({ path: directory });
  const reply = await request<{ saved_models: string[] }>(`saved-models${query}`);
  return reply.saved_models;
}

/** The Voila page that renders a notebook (Voila's Jupyter server extension serves /voila/render/<path>). */
export function voilaUrl(path: string): string {
  const settings = ServerConnection.makeSettings();
  return URLExt.join(settings.baseUrl, 'voila/render', URLExt.encodeParts(path));
}
