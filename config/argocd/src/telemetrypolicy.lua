if hs.status == "Healthy" and obj.status ~= nil and obj.status.provider ~= nil and obj.status.provider ~= "" then
  hs.message = "Telemetry on " .. obj.status.provider .. ". " .. hs.message
end
return hs
