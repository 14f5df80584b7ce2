"""``POST /v1/responses`` (JSON or SSE), ``GET`` and ``DELETE /v1/responses/{id}`` of the local engine.

The protocol work is in ``responses_request`` (validation) and ``responses_core`` (answer and events); this
module reads the body, keeps the bounded store of responses for ``previous_response_id``, and writes the
answer. SSE is chosen by ``stream: true`` alone (the SDK sends ``Accept: application/json`` even when
streaming): ``event: <type>\\ndata: <json>\\n\\n`` frames with ``sequence_number`` from 0 and no ``[DONE]``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from aiohttp import web

from voicebot.local import keys
from voicebot.local.api_error import ApiError
from voicebot.local.http_errors import read_json
from voicebot.local.response_store import StoredResponse
from voicebot.local.responses_core import answer, conversation_for, new_id, stream_events
from voicebot.local.responses_request import parse_request

log = logging.getLogger("voicebot.local.responses")

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"


async def create_response(request: web.Request) -> web.StreamResponse:
    req = parse_request(await read_json(request))
    store = request.config_dict[keys.RESPONSES]
    previous: tuple[dict[str, Any], ...] = ()
    if req.previous_response_id is not None:
        entry = store.get(req.previous_response_id)
        if entry is None:
            raise ApiError(
                f"Previous response with id '{req.previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        previous = entry.conversation
    conversation = conversation_for(previous, req)
    final = answer(
        request.config_dict[keys.BRAIN], req, conversation, response_id=new_id("resp_"), now=time.time()
    )
    if req.store:
        store.put(StoredResponse(final, (*conversation, *final["output"])))
    if not req.stream:
        return web.json_response(final)
    return await _write_sse(request, stream_events(final, obfuscate=req.include_obfuscation))


async def _write_sse(request: web.Request, events: list[dict[str, Any]]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": SSE_CONTENT_TYPE, "Cache-Control": "no-cache"})
    await response.prepare(request)
    try:
        for event in events:
            frame = f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
            await response.write(frame.encode())
        await response.write_eof()
    except ConnectionResetError:
        log.debug("client went away during a Responses stream")
    return response


async def get_response(request: web.Request) -> web.Response:
    entry = request.config_dict[keys.RESPONSES].get(request.match_info["response_id"])
    if entry is None:
        raise _not_found(request.match_info["response_id"])
    return web.json_response(entry.response)


async def delete_response(request: web.Request) -> web.Response:
    response_id = request.match_info["response_id"]
    if not request.config_dict[keys.RESPONSES].delete(response_id):
        raise _not_found(response_id)
    return web.json_response({"id": response_id, "object": "response.deleted", "deleted": True})


def _not_found(response_id: str) -> ApiError:
    return ApiError(f"Response with id '{response_id}' not found.", status=404, param="response_id")


def add_responses_routes(app: web.Application) -> None:
    app.router.add_post("/responses", create_response)
    app.router.add_get("/responses/{response_id}", get_response)
    app.router.add_delete("/responses/{response_id}", delete_response)
