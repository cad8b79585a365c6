if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Canary suspended (spec.suspend). " .. hs.message
  return hs
end
local st = obj.status
if st ~= nil and st.phase ~= nil then
  local weight = " (canary weight " .. (st.canaryWeight or 0) .. "%, " .. (st.failedChecks or 0) .. " failed checks)"
  if st.phase == "Failed" then
    hs.status = "Degraded"
    hs.message = "Rolled back" .. weight .. ": " .. (st.message or hs.message)
  elseif st.phase == "WaitingPromotion" then
    hs.status = "Suspended"
    hs.message = "Waiting for promotion (kubectl meshplane canary promote " .. obj.metadata.name .. ")" .. weight
  elseif st.phase == "Progressing" or st.phase == "Promoting" or st.phase == "Finalising" or st.phase == "Initializing" or st.phase == "Waiting" then
    if hs.status == "Healthy" then
      hs.status = "Progressing"
    end
    hs.message = st.phase .. weight .. ". " .. hs.message
  end
end
return hs
